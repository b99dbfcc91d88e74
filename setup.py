"""Installs spcxr_monai and the ``spcxr`` console command.

Exact pins for a reproducible CPU install live in ``requirements.txt``; the ranges here keep the
package installable beside a user's own (e.g. CUDA) torch.
"""

from pathlib import Path

from setuptools import find_namespace_packages, setup

HERE = Path(__file__).parent

setup(
    name="spcxr-monai",
    version="0.1.0",
    description="SPCXR on MONAI: GMML self-supervised pretraining of Vision Transformers on chest X-rays",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    # namespace packages: the sample and release folders hold data only, and are installed as such (no warnings)
    packages=find_namespace_packages(include=["spcxr_monai", "spcxr_monai.*"], exclude=["*.__pycache__"]),
    package_data={
        "spcxr_monai.data": ["sample/*.md", "sample/cxr/*/*/*.png", "sample/dicom/*.dcm"],
        "spcxr_monai.pretrained": ["*.pt", "*.md", "*.json", "*.png", "*.npz"],
    },
    include_package_data=True,
    install_requires=[
        "torch>=2.4",
        "monai>=1.6,<1.7",
        "pytorch-ignite>=0.5,<0.6",
        "pydicom>=2.4,<4",  # 3.x in requirements.txt; 2.4 where MONAI Label needs it
        "pylibjpeg>=2.0",
        "pylibjpeg-openjpeg>=2.3",
        "pylibjpeg-libjpeg>=2.1",
        "SimpleITK>=2.3",
        "itk>=5.3",
        "nibabel>=5.0",
        "scikit-image>=0.22",
        "pillow>=10",
        "numpy>=1.24",
        "tensorboard>=2.14",
        "matplotlib>=3.7",
        "scikit-learn>=1.3",
        "einops>=0.7",
        "fire>=0.5",
        "tqdm>=4.60",  # progress bars (MONAI's caching, Ignite's ProgressBar, spcxr predict)
    ],
    extras_require={
        "dev": [
            "jsonschema>=3.2",
            "pytest>=8",
            "pytest-timeout>=2.3",
            "nbclient>=0.10",
            "nbformat>=5.9",
            "ipykernel>=6.29",
            "pandas>=2.0",
            # the reading-room browser test, driving Debian's Chromium (no browser download)
            "playwright>=1.40",
            # static checks (pyproject.toml), pinned: a new release's new rules must not turn CI red by themselves
            "ruff==0.17.6",
            "mypy==2.4.1",
            "import-linter==2.17",
            "pre-commit>=3.5",
        ],
        "notebooks": ["jupyter>=1.0", "ipykernel>=6.29"],
        # DICOM SEG output of the segmentation bundle (needs pydicom 3)
        "dicom-seg": ["highdicom>=0.23"],
        "export": ["onnx>=1.16", "onnxscript>=0.2", "onnxruntime>=1.18"],
    },
    entry_points={"console_scripts": ["spcxr=spcxr_monai.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Medical Science Apps.",
        "Framework :: Pytest",
    ],
)
