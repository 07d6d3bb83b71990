"""voxaug: augmentation and preprocessing of 3D medical volumes (NIfTI, NRRD, Analyze, DICOM) on the
CPU and the GPU, with a streaming loader for PyTorch and dataset-scale runs on Ray.

>>> import voxaug
>>> t1 = voxaug.read("t1.nii.gz"); seg = voxaug.read("seg.nii.gz", kind="label")
>>> pipe = voxaug.Pipeline.from_file("brain_mri.json")
>>> out, plan = pipe.sample(voxaug.Subject(t1=t1, seg=seg), seed=0, index=3)

``voxaug.torch`` (needs torch) and ``voxaug.ray`` (needs ray) are imported on demand.
"""
from ._errors import (VoxaugError, VoxaugFileNotFoundError, VoxaugMemoryError, VoxaugOSError,
                      VoxaugRuntimeError, VoxaugValueError)
from ._loader import Loader
from ._patches import GridAggregator, GridSampler
from ._pipeline import Pipeline
from ._register import register
from ._volume import Subject, Volume, read, write
from ._voxaug import num_threads

__version__ = "0.1.0"
__all__ = ["read", "write", "Volume", "Subject", "Pipeline", "Loader", "GridSampler", "GridAggregator",
           "VoxaugError", "VoxaugOSError", "VoxaugFileNotFoundError", "VoxaugValueError", "VoxaugRuntimeError",
           "VoxaugMemoryError", "num_threads", "register"]
