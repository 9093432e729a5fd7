"""Hardware: what this machine has (NVML, psutil), the training-memory estimate, and `doctor`."""
