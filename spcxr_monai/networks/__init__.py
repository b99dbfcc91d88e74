"""Networks: one ViT encoder base; GMML ViT (pretraining), ViT classifier and UNETR (fine-tuning); encoder weight transfer."""

from spcxr_monai.networks.classifier import ViTClassifier, create_vit_classifier
from spcxr_monai.networks.encoder import (
    VIT_SIZES,
    DropPathTransformerBlock,
    ViTEncoderModel,
    drop_path_blocks,
    set_fused_attention,
    size_config,
)
from spcxr_monai.networks.features import encoder_features, image_features, load_feature_encoder
from spcxr_monai.networks.gmml_vit import (
    GMMLViT,
    ReconstructionHead,
    create_gmml_vit,
    default_reconstruction_blocks,
)
from spcxr_monai.networks.transfer import (
    encoder_of,
    encoder_state_dict,
    load_encoder_weights,
    maybe_load_encoder_weights,
    maybe_load_gmml_weights,
    resize_position_embeddings,
    trained_sizes,
)
from spcxr_monai.networks.unetr import create_unetr

__all__ = [
    "VIT_SIZES",
    "DropPathTransformerBlock",
    "ViTEncoderModel",
    "drop_path_blocks",
    "size_config",
    "GMMLViT",
    "ReconstructionHead",
    "ViTClassifier",
    "create_gmml_vit",
    "create_unetr",
    "create_vit_classifier",
    "default_reconstruction_blocks",
    "encoder_features",
    "encoder_of",
    "encoder_state_dict",
    "load_encoder_weights",
    "image_features",
    "load_feature_encoder",
    "maybe_load_encoder_weights",
    "maybe_load_gmml_weights",
    "resize_position_embeddings",
    "set_fused_attention",
    "trained_sizes",
]
