"""engine/hardware/probe.py, readings.py and nvml.py: recorded readings, the hw event, CUDA_VISIBLE_DEVICES and MIG
handling of the NVML backend (against a stand-in pynvml module), the CPU-only answer."""

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.fsutil import GiB, MiB
from sage_ft_tui.engine.hardware import nvml as nvml_backend
from sage_ft_tui.engine.hardware import probe as hw
from sage_ft_tui.engine.hardware import readings

FIX = Path(__file__).parent / "fixtures" / "hardware"


@pytest.fixture(autouse=True)
def _fresh_backend(monkeypatch):
    monkeypatch.setattr(hw, "_cached", None)
    yield


def use(monkeypatch, name):
    monkeypatch.setenv(hw.RECORDED_ENV, str(FIX / f"{name}.json"))
    return hw.get_backend()


@pytest.mark.parametrize(
    "name,count,total_gib,bf16",
    [
        ("rtx3060", 1, 12, True),
        ("rtx4090", 1, 24, True),
        ("a100x8", 8, 80, True),
        ("h100_mig", 2, 39, True),
        ("shared_a100_70pct", 1, 40, True),
        ("no_gpu", 0, None, False),
    ],
)
def test_recorded_fixtures(monkeypatch, name, count, total_gib, bf16):
    s = use(monkeypatch, name).snapshot()
    assert len(s.gpus) == count
    assert s.has_gpu == bool(count)
    assert s.bf16 == bf16
    if count:
        assert round(s.gpus[0].mem_total / GiB) == total_gib
        for g in s.gpus:
            assert g.mem_used + g.mem_free == g.mem_total
    assert s.summary()


def test_recorded_backend_cycles_and_stamps_time(monkeypatch):
    b = use(monkeypatch, "rtx4090")
    assert isinstance(b, hw.RecordedBackend) and isinstance(b, readings.Backend)
    temps = [b.snapshot().gpus[0].temp for _ in range(4)]
    assert temps == [36, 37, 36, 37]
    assert abs(b.snapshot().t - __import__("time").time()) < 5
    assert b.snapshot(disk_path="/data/runs").host.disk_path == "/data/runs"


def test_shared_gpu_flags_foreign_memory(monkeypatch):
    g = use(monkeypatch, "shared_a100_70pct").snapshot().gpus[0]
    assert g.shared and g.processes[0].user == "alice"
    assert g.mem_used / g.mem_total == pytest.approx(0.70, abs=0.01)
    assert g.foreign_memory > 27 * GiB
    assert "shared" in use(monkeypatch, "shared_a100_70pct").snapshot().summary()


def test_mig_fixture(monkeypatch):
    s = use(monkeypatch, "h100_mig").snapshot()
    assert all(g.mig and g.util is None and g.uuid.startswith("MIG-") for g in s.gpus)
    assert [g.mig_instance for g in s.gpus] == [0, 1]


def test_event_has_design_fields(monkeypatch):
    s = use(monkeypatch, "a100x8").snapshot()
    ev = hw.snapshot_to_event(s)
    assert set(ev) == {"gpus", "cpu_percent", "ram_used", "ram_total"}
    assert set(ev["gpus"][0]) == {"index", "name", "util", "mem_used", "mem_total", "temp", "power"}
    assert [g["index"] for g in ev["gpus"]] == list(range(8))
    json.dumps(ev)


def test_dict_round_trip(monkeypatch):
    s = use(monkeypatch, "shared_a100_70pct").snapshot()
    again = readings.snapshot_from_dict(json.loads(json.dumps(readings.snapshot_to_dict(s))))
    assert again == s
    assert isinstance(again.gpus[0].compute_capability, tuple)


@pytest.mark.parametrize(
    "content,msg",
    [
        ("{not json", "not a readable JSON"),
        ("[]", "no readings"),
        ('{"readings": [{"t": 0, "gpus": [], "host": {"cores": 1}}]}', "missing field 'cpu_model'"),
        ('{"t": 0, "gpus": [], "host": {}, "colour": 1}', "unknown field 'colour'"),
        (
            '{"t": 0, "gpus": {}, "host": {"cpu_model": "x", "cores": 1, "cpu_percent": 0, "ram_total": 1, "ram_used": 1,'
            ' "disk_free": 1, "disk_path": "/"}}',
            "expected a list",
        ),
        ("7", "expected an object"),
    ],
)
def test_bad_recordings_are_one_line_errors(tmp_path, monkeypatch, content, msg):
    f = tmp_path / "rec.json"
    f.write_text(content)
    monkeypatch.setenv(hw.RECORDED_ENV, str(f))
    with pytest.raises(SageError) as e:
        hw.get_backend()
    assert msg in e.value.message and "\n" not in e.value.oneline()


def test_missing_recording(monkeypatch, tmp_path):
    monkeypatch.setenv(hw.RECORDED_ENV, str(tmp_path / "nope.json"))
    with pytest.raises(SageError, match="no such file"):
        hw.snapshot()


def test_backend_changes_with_env(monkeypatch):
    a = use(monkeypatch, "rtx3060")
    assert hw.get_backend() is a
    b = use(monkeypatch, "rtx4090")
    assert b is not a and "4090" in hw.snapshot().gpus[0].name


def test_no_nvml_gives_cpu_answer(monkeypatch, tmp_path):
    monkeypatch.delenv(hw.RECORDED_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    s = hw.get_backend().snapshot(disk_path=tmp_path / "not" / "yet")
    assert s.gpus == [] and "nvidia-ml-py" in s.note
    assert s.host.cores >= 1 and s.host.ram_total > 0 and s.host.disk_free > 0


@pytest.mark.parametrize(
    "value,expected",
    [
        (None, None),
        ("", []),
        ("-1", []),
        ("0,1", ["0", "1"]),
        ("1, 0", ["1", "0"]),
        ("0,x,1", ["0"]),
        ("GPU-abc,MIG-def", ["GPU-abc", "MIG-def"]),
    ],
)
def test_parse_visible_devices(value, expected):
    assert nvml_backend.parse_visible_devices(value) == expected


def test_no_heavy_imports():
    code = (
        "import sys, sage_ft_tui.engine.hardware.probe as h, sage_ft_tui.engine.hardware.estimate, sage_ft_tui.engine.config.presets; h.snapshot(); "
        "bad=[m for m in ('torch','transformers','textual') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ---- the NVML backend against a stand-in pynvml ------------------------------------------


class FakeNVMLError(Exception):
    pass


def fake_pynvml(devices, *, init_error=None, procs=None):
    """devices: list of dicts {uuid, name, total, used, cc, mig: [dict(uuid, name, total, used)] or None}."""
    m = types.ModuleType("pynvml")
    m.NVMLError = FakeNVMLError
    m.NVML_DEVICE_MIG_ENABLE = 1
    m.NVML_TEMPERATURE_GPU = 0
    procs = procs or {}

    class H:
        def __init__(self, d, parent=None):
            self.d, self.parent = d, parent

    handles = [H(d) for d in devices]

    def init():
        if init_error:
            raise FakeNVMLError(init_error)

    def unsupported(*a):
        raise FakeNVMLError("Not Supported")

    m.nvmlInit = init
    m.nvmlShutdown = lambda: None
    m.nvmlDeviceGetCount = lambda: len(handles)
    m.nvmlDeviceGetHandleByIndex = lambda i: handles[i]
    m.nvmlDeviceGetUUID = lambda h: h.d["uuid"]
    m.nvmlDeviceGetName = lambda h: h.d["name"].encode()
    m.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(
        total=h.d["total"], used=h.d["used"], free=h.d["total"] - h.d["used"]
    )
    m.nvmlDeviceGetCudaComputeCapability = lambda h: h.d["cc"]
    m.nvmlDeviceGetUtilizationRates = lambda h: unsupported() if h.parent else types.SimpleNamespace(gpu=55, memory=20)
    m.nvmlDeviceGetPowerUsage = lambda h: 123456
    m.nvmlDeviceGetEnforcedPowerLimit = lambda h: 450000
    m.nvmlDeviceGetTemperature = lambda h, s: 51
    m.nvmlDeviceGetMigMode = lambda h: (1, 1) if h.d.get("mig") is not None else (0, 0)
    m.nvmlDeviceGetMaxMigDeviceCount = lambda h: 7 if h.d.get("mig") is not None else 0

    def mig_handle(h, i):
        insts = h.d.get("mig") or []
        if i >= len(insts):
            raise FakeNVMLError("Not Found")
        return H({**insts[i], "cc": h.d["cc"]}, parent=h)

    m.nvmlDeviceGetMigDeviceHandleByIndex = mig_handle
    m.nvmlDeviceGetComputeRunningProcesses = lambda h: [
        types.SimpleNamespace(pid=p, usedGpuMemory=mem) for p, mem in procs.get(h.d["uuid"], [])
    ]
    m.nvmlDeviceGetGraphicsRunningProcesses = lambda h: []
    m.nvmlSystemGetDriverVersion = lambda: "550.54.15"
    m.nvmlSystemGetCudaDriverVersion = lambda: 12040
    return m


DEVS = [
    {"uuid": "GPU-aaaa1111", "name": "NVIDIA GeForce RTX 4090", "total": 24 * GiB, "used": 1 * GiB, "cc": (8, 9)},
    {"uuid": "GPU-bbbb2222", "name": "Tesla V100-SXM2-16GB", "total": 16 * GiB, "used": 0, "cc": (7, 0)},
    {
        "uuid": "GPU-cccc3333",
        "name": "NVIDIA H100 80GB HBM3",
        "total": 80 * GiB,
        "used": 0,
        "cc": (9, 0),
        "mig": [
            {"uuid": "MIG-1111", "name": "NVIDIA H100 80GB HBM3 MIG 3g.40gb", "total": 40 * GiB, "used": GiB // 4},
            {"uuid": "MIG-2222", "name": "NVIDIA H100 80GB HBM3 MIG 3g.40gb", "total": 40 * GiB, "used": 0},
        ],
    },
]


def nvml(monkeypatch, visible=None, **kw):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(DEVS, **kw))
    return nvml_backend.NvmlBackend(visible_devices=visible, use_env=False)


def test_nvml_all_devices_mig_expanded(monkeypatch):
    s = nvml(monkeypatch).snapshot()
    assert [(g.index, g.mig_instance, g.uuid) for g in s.gpus] == [
        (0, None, "GPU-aaaa1111"),
        (1, None, "GPU-bbbb2222"),
        (2, 0, "MIG-1111"),
        (2, 1, "MIG-2222"),
    ]
    g0, v100, mig = s.gpus[0], s.gpus[1], s.gpus[2]
    assert g0.bf16 and not v100.bf16 and v100.compute_capability == (7, 0)
    assert g0.util == 55 and mig.util is None and mig.mig and mig.mem_total == 40 * GiB
    assert g0.power_w == pytest.approx(123.456) and g0.power_limit_w == 450 and g0.temp == 51
    assert s.driver == "550.54.15" and s.cuda == "12.4"


@pytest.mark.parametrize(
    "visible,expected",
    [
        ("1", ["GPU-bbbb2222"]),
        ("1,0", ["GPU-bbbb2222", "GPU-aaaa1111"]),
        ("GPU-aaaa", ["GPU-aaaa1111"]),  # a unique prefix, as CUDA allows
        ("MIG-2222", ["MIG-2222"]),
        ("MIG-GPU-cccc3333/1/0", ["MIG-1111"]),
        ("0,7,1", ["GPU-aaaa1111"]),  # CUDA stops at the first bad entry
        ("", []),
    ],
)
def test_nvml_honours_visible_devices(monkeypatch, visible, expected):
    s = nvml(monkeypatch, visible).snapshot()
    assert [g.uuid for g in s.gpus] == expected
    if visible in ("0,7,1",):
        assert "matches no device" in s.note


def test_nvml_foreign_processes(monkeypatch):
    import os

    procs = {"GPU-aaaa1111": [(os.getpid(), 512 * MiB), (999999999, 3 * GiB)]}
    g = nvml(monkeypatch, "0", procs=procs).snapshot().gpus[0]
    mine, other = g.processes
    assert not mine.foreign and mine.user
    assert other.foreign and other.user is None and g.foreign_memory == 3 * GiB


def test_nvml_init_failure_becomes_cpu_answer(monkeypatch):
    monkeypatch.delenv(hw.RECORDED_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([], init_error="Driver Not Loaded"))
    s = hw.get_backend().snapshot()
    assert not s.gpus and "Driver Not Loaded" in s.note
