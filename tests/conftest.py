"""Shared pytest fixtures: private NUT environments (see tests/nutenv.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nutenv import (  # noqa: E402
    DATA_DIR,
    NutEnv,
    UpsSpec,
    dummy_ups,
    real_nut_available,
    require_real_nut,
)

EnvFactory = Callable[..., NutEnv]


@pytest.fixture
def real_nut() -> None:
    """Skip (or fail, with NUTLITE_REQUIRE_REAL_NUT=1) when Debian's NUT is not installed."""
    require_real_nut()


@pytest.fixture
def nut_env_factory(tmp_path: Path) -> Iterator[EnvFactory]:
    """Returns ``make(upses, start=True, base=None, **NutEnv kwargs) -> NutEnv``, started unless
    ``start`` is false, in ``base`` (default: a folder in tmp_path); every env is stopped at teardown.

    If any flavour is "debian", the test is skipped/failed per `require_real_nut`.
    """
    envs: list[NutEnv] = []

    def make(upses: list[UpsSpec], *, start: bool = True, base: Path | None = None, **kwargs: object) -> NutEnv:
        if "debian" in (kwargs.get("driver_flavour"), kwargs.get("upsd_flavour")):
            require_real_nut()
        env = NutEnv(base or tmp_path / f"env{len(envs)}", upses, **kwargs)  # type: ignore[arg-type]
        envs.append(env)
        if start:
            env.start()
        return env

    yield make
    for env in envs:
        env.stop()


@pytest.fixture
def checked_env_factory(nut_env_factory: EnvFactory) -> Iterator[EnvFactory]:
    """`nut_env_factory`, and at teardown no upsd log of the envs it made may show a Traceback."""
    envs: list[NutEnv] = []

    def make(upses: list[UpsSpec], **kwargs: object) -> NutEnv:
        env = nut_env_factory(upses, **kwargs)
        envs.append(env)
        return env

    yield make
    for env in envs:
        env.stop()
        assert "Traceback" not in env.upsd_log(), env.upsd_log()[-4000:]


@pytest.fixture
def nutlite_env(nut_env_factory: EnvFactory) -> NutEnv:
    """nutlite's upsd + nutlite's dummy-ups on tests/data/conformance.dev, UPS name ``dummy``."""
    return nut_env_factory(
        [dummy_ups(desc="Test UPS")],
        files={"conformance.dev": DATA_DIR / "conformance.dev"},
    )


@pytest.fixture
def debian_env(nut_env_factory: EnvFactory) -> NutEnv:
    """Debian's upsd + Debian's dummy-ups on tests/data/conformance.dev, UPS name ``dummy``."""
    return nut_env_factory(
        [dummy_ups(desc="Test UPS")],
        files={"conformance.dev": DATA_DIR / "conformance.dev"},
        driver_flavour="debian",
        upsd_flavour="debian",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes a minute or more (e.g. NUT's 60 s idle timeout)")


def pytest_report_header(config: pytest.Config) -> str:
    return f"Debian NUT 2.8.0 daemons: {'present' if real_nut_available() else 'MISSING'}"
