"""Run under torchrun: DDP + synchronised BatchNorm gradients vs one process, same batch.

argv: model name, output JSON, memory format of the DCNN's conv stack (``channels_last``
or ``contiguous``). Both sides use the same memory format and float64: in float32 the
DCNN's third convolution's weight gradient is ill-conditioned (NCHW float32 is ~3 % off
float64, channels-last float32 < 1 %), so a float32 comparison of two different but
correct reductions could exceed the tolerance; in float64 only DDP can make them differ.
Writes ``{parameter: max |grad error| / max |grad|}`` as JSON to argv[2] (rank 0).
"""

import copy
import json
import sys

import torch
import torch.distributed as dist
import torch.nn.functional as F

from gpwave.models import build_model, sync_batchnorm

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
torch.manual_seed(0)
model = build_model(
    sys.argv[1], (1, 256, 30), **({"dropout": 0.0} if sys.argv[1] == "lcnn" else {})
).double()
fmt = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}[sys.argv[3]]
model.memory_format = fmt  # the DCNN reads it in forward; other models ignore it
model.to(memory_format=fmt)  # and its conv weights
ref = copy.deepcopy(model)
assert ref.memory_format == fmt
x, y = torch.randn(16, 1, 256, 30, dtype=torch.float64), torch.randint(0, 2, (16,))
F.cross_entropy(ref(x), y).backward()
net = torch.nn.parallel.DistributedDataParallel(sync_batchnorm(model, "cpu"))
F.cross_entropy(net(x[rank::world]), y[rank::world]).backward()
if rank == 0:
    err = {
        k: float((p.grad - q.grad).abs().max() / p.grad.abs().max().clamp_min(1e-12))
        for (k, p), (_, q) in zip(ref.named_parameters(), model.named_parameters(), strict=True)
    }
    with open(sys.argv[2], "w") as f:
        json.dump(err, f)
dist.destroy_process_group()
