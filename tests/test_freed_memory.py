"""freed_memory.keep_freed_memory: a training process reuses the memory its batches free instead of faulting in
fresh pages for every batch (reportgen/freed_memory.py says why)."""

import subprocess
import sys

import pytest

FAULTS = """
import resource, sys, torch
import torch.nn.functional as F
from reportgen import train
from reportgen.models.registry import create_model
if sys.argv[1] == "kept":
    from reportgen.freed_memory import keep_freed_memory
    assert keep_freed_memory()
else:  # glibc's starting threshold, held: a freed block is handed back, as it is until glibc adapts (if it does)
    import ctypes
    from reportgen.freed_memory import M_MMAP_THRESHOLD
    assert ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, 128 * 1024)
torch.set_num_threads(1)
torch.manual_seed(0)
model = train.apply_layout(create_model("lenet5"), train.CHANNELS_LAST)
optimizer = train.make_optimizer(train.TrainConfig(), model.parameters())
images, labels = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))

def step():
    optimizer.zero_grad()
    F.cross_entropy(model(images), labels).backward()
    optimizer.step()

for _ in range(5):
    step()  # warm up: the allocator's own state settles
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(40):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux")
def test_kept_freed_memory_spares_the_page_faults_of_every_batch():
    handed_back, kept = page_faults("handed back"), page_faults("kept")
    # 40 training steps of LeNet-5 (channels_last, fused Adam). With glibc's defaults a step's freed 1.2 MB
    # tensors were mapped afresh and faulted in page by page in most runs (14,717-45,761 faults in 5 of 6 runs
    # of this script beside each other), but not in all (1 fault once: glibc raises its threshold after a
    # free, and may keep it), so the comparison holds glibc's starting threshold; kept, they are reused
    # (1-390 faults, four runs side by side).
    assert kept < 40 * 40, kept  # under 40 pages a step: not one 1.2 MB tensor (294 pages) faulted in afresh
    assert kept * 20 < handed_back, (kept, handed_back)
