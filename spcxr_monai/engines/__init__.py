"""What MONAI's engines lack for GMML pretraining and fine-tuning: the batch preparation that group-masks,
the masked L1 loss, an autocast inferer for any device, and layer-wise learning-rate decay groups."""

from spcxr_monai.engines.gmml import GMMLPrepareBatch, MaskedL1Loss, split_target
from spcxr_monai.engines.inferer import AutocastInferer
from spcxr_monai.engines.optim import param_groups_layer_decay, param_groups_weight_decay, vit_layer_id

__all__ = [
    "AutocastInferer",
    "GMMLPrepareBatch",
    "MaskedL1Loss",
    "param_groups_layer_decay",
    "param_groups_weight_decay",
    "split_target",
    "vit_layer_id",
]
