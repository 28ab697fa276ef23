"""How much each scenario runs: the issue's counts (full) and a CI-sized quick mode."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

SCENARIOS = ("latency", "throughput", "long", "recovery", "idle", "stock", "scale")
"""`long` also measures history growth; `stock` repeats latency and throughput on the stock
dev server (20 polls/s cap in place); `scale` runs many conversations with a slow model on 1,
2 and 3 worker processes (`--scale`: minutes at the full counts, so not run by default)."""
DEFAULT_SCENARIOS = tuple(s for s in SCENARIOS if s != "scale")
DATABASES = ("sqlite", "postgres")


@dataclass(frozen=True)
class Counts:
    latency_turns: int = 50
    """Timed sequential turns of one conversation, per repeat and per workflow."""
    repeats: int = 3
    """Latency and throughput repeats; the report gives the median ratio."""
    warmup_turns: int = 2
    """Untimed turns first: the workflow's start and its first turn."""
    throughput_conversations: int = 50
    throughput_turns: int = 5
    long_turns: int = 1000
    history_points: tuple[int, ...] = (10, 100, 300)
    idle_small: int = 100
    idle_large: int = 10_000
    recovery_runs: int = 3
    stock_latency_turns: int = 50
    stock_repeats: int = 3
    scale_conversations: int = 1000
    """Conversations at once in the scale scenario, each `scale_turns` turns in a row."""
    scale_turns: int = 2
    scale_workers: tuple[int, ...] = (1, 2, 3)
    """Worker processes on the one server, one measurement each."""
    scale_model_ms: int = 500
    """Simulated latency of every model call, ours and the floor's."""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def for_stock(self) -> Counts:
        return replace(self, latency_turns=self.stock_latency_turns, repeats=self.stock_repeats)


FULL = Counts()
QUICK = Counts(
    latency_turns=20,
    throughput_conversations=10,
    throughput_turns=3,
    long_turns=30,
    history_points=(10, 30),
    idle_small=20,
    idle_large=200,
    recovery_runs=1,
    stock_latency_turns=10,
    stock_repeats=1,
    scale_conversations=20,
    scale_turns=1,
    scale_workers=(1, 2),
)
