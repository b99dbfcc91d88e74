"""MONAI Label tasks of the spcxr-monai app."""
