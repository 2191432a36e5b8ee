"""Timing statistics on a fake clock: the step advances the clock by known durations."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from unetrt.bench.machine import PeakMemory
from unetrt.bench.timing import DEFAULT_MIN_SECONDS, TimingPlan, TimingStats, measure
from unetrt.errors import UnetrtError


class FakeClock:
    """A clock that only moves when a step runs: step ``i`` takes ``durations[i]`` seconds."""

    def __init__(self, durations):
        self.now = 100.0
        self.durations = list(durations)
        self.calls = 0

    def __call__(self) -> float:
        return self.now

    def step(self) -> None:
        self.now += self.durations[self.calls]
        self.calls += 1


def test_fixed_count_percentiles_on_a_fake_clock():
    warm = [5.0, 5.0]                       # warm-up steps must not enter the statistics
    timed = [i / 1000 for i in range(1, 101)]  # 1 ms .. 100 ms, shuffled
    rng = np.random.default_rng(0)
    clock = FakeClock(warm + list(rng.permutation(timed)))
    stats = measure(clock.step, TimingPlan(warmup=2, iters=100), batch=4, clock=clock)
    assert clock.calls == 102
    assert stats.count == 100 and stats.batch == 4
    assert stats.p50 == pytest.approx(50.5)
    assert stats.p90 == pytest.approx(90.1)
    assert stats.p99 == pytest.approx(99.01)
    assert stats.mean == pytest.approx(50.5)
    assert stats.min == pytest.approx(1.0) and stats.max == pytest.approx(100.0)
    assert stats.std == pytest.approx(math.sqrt((100**2 - 1) / 12))  # population std of 1..100
    assert stats.throughput_ips == pytest.approx(4 * 1000 / 50.5)
    assert stats.total_s == pytest.approx(5.05)
    assert set(stats.latency_ms()) == {"p50", "p90", "p99", "mean", "std", "min", "max"}


def test_duration_mode_stops_after_the_minimum_time_and_iterations():
    clock = FakeClock([0.3] * 50)
    stats = measure(clock.step, TimingPlan(warmup=0, min_seconds=1.0), clock=clock)
    assert stats.count == 4  # 0.3 * 4 = 1.2 s >= 1 s
    assert stats.p50 == pytest.approx(300.0)
    clock = FakeClock([2.0] * 10)
    assert measure(clock.step, TimingPlan(warmup=0, min_seconds=1.0, min_iters=3), clock=clock).count == 3


def test_default_plan_is_a_minimum_duration():
    plan = TimingPlan()
    assert plan.iters is None and plan.duration == DEFAULT_MIN_SECONDS
    assert plan.to_dict()["mode"] == "minimum duration"
    assert TimingPlan(iters=5).duration is None


def test_sync_brackets_every_timed_iteration():
    events = []
    clock = FakeClock([0.001] * 5)

    def step():
        events.append("step")
        clock.step()

    measure(step, TimingPlan(warmup=1, iters=3), clock=clock, sync=lambda: events.append("sync"))
    assert events == ["step"] + ["sync", "step", "sync"] * 3


def test_real_sleep_is_measured():
    stats = measure(lambda: time.sleep(0.01), TimingPlan(warmup=0, iters=5))
    assert 9.0 <= stats.min and stats.p50 < 60.0


@pytest.mark.parametrize("kwargs, needle", [
    ({"iters": 0}, "--iters 0"), ({"iters": -3}, "--iters -3"), ({"warmup": -1}, "--warmup -1"),
    ({"min_seconds": 0.0}, "--min-seconds 0.0"), ({"min_seconds": float("nan")}, "--min-seconds nan"),
    ({"iters": 5, "min_seconds": 1.0}, "not both"),
])
def test_bad_plans_are_refused(kwargs, needle):
    with pytest.raises(UnetrtError, match=needle):
        TimingPlan(**kwargs)


def test_stats_need_samples():
    with pytest.raises(UnetrtError, match="no timed iterations"):
        TimingStats.from_samples([])


def test_peak_memory_on_cpu_sees_an_allocation():
    memory = PeakMemory("cpu")
    memory.start()
    block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
    peak, kind = memory.stop()
    del block
    assert "process" in kind and peak is not None and peak > 64
