"""Write the machine's fingerprint (profiler.fingerprint + torch/CUDA facts) as JSON: argv[1]."""

import json
import platform
import sys
from dataclasses import asdict
from datetime import UTC, datetime

import torch

from profiler import fingerprint

cuda = torch.cuda.is_available()
info = {
    **asdict(fingerprint.collect(use_gpu=cuda)),
    "python": sys.version.split()[0],
    "platform": platform.platform(),
    "torch": torch.__version__,
    "torch_cuda": torch.version.cuda,
    "cudnn": torch.backends.cudnn.version() if cuda else None,
    "device_name": torch.cuda.get_device_name() if cuda else "cpu",
    "device_capability": list(torch.cuda.get_device_capability()) if cuda else None,
    "device_count": torch.cuda.device_count() if cuda else 0,
    "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
}
with open(sys.argv[1], "w", encoding="utf-8") as fh:
    json.dump(info, fh, indent=2)
print(json.dumps(info))
