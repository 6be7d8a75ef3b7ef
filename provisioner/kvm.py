"""Does KVM really run guests here? (`domain_type = auto`)

A /dev/kvm that opens is not enough. The probe runs one real instruction in a
KVM guest — `hlt` at the x86 reset vector — in a child process with a
deadline, and requires the vCPU to exit with KVM_EXIT_HLT. Even that passes
under PVM (the `kvm_pvm` module of some nested hosts), which runs only
PVM-aware guest kernels: KVM counts only when a hardware backend
(kvm_intel / kvm_amd) is loaded.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

HARDWARE_BACKENDS = ("kvm_intel", "kvm_amd")

PROBE_TIMEOUT = 5.0

_PROBE = r"""
import fcntl, mmap, os, struct, ctypes, sys
KVM_GET_API_VERSION, KVM_CREATE_VM, KVM_GET_VCPU_MMAP_SIZE = 0xAE00, 0xAE01, 0xAE04
KVM_CREATE_VCPU, KVM_RUN, KVM_SET_USER_MEMORY_REGION = 0xAE41, 0xAE80, 0x4020AE46
KVM_EXIT_HLT = 5
kvm = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
if fcntl.ioctl(kvm, KVM_GET_API_VERSION) != 12:
    sys.exit(3)
vm = fcntl.ioctl(kvm, KVM_CREATE_VM, 0)
# 64 KiB of guest memory ending at 4 GiB; the vCPU resets at 0xfffffff0.
size, base = 0x10000, 0xFFFF0000
memory = mmap.mmap(-1, size, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
memory[0xFFF0] = 0xF4  # hlt
address = ctypes.addressof(ctypes.c_char.from_buffer(memory))
fcntl.ioctl(vm, KVM_SET_USER_MEMORY_REGION, struct.pack("IIQQQ", 0, 0, base, size, address))
vcpu = fcntl.ioctl(vm, KVM_CREATE_VCPU, 0)
run_size = fcntl.ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE)
run = mmap.mmap(vcpu, run_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
fcntl.ioctl(vcpu, KVM_RUN, 0)
sys.exit(0 if struct.unpack_from("I", run, 8)[0] == KVM_EXIT_HLT else 4)
"""


@functools.cache
def kvm_runs_guests() -> bool:
    """True if unmodified KVM guests can run on this host."""
    if not any(Path("/sys/module", name).exists() for name in HARDWARE_BACKENDS):
        return False
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0
