"""README.md must document every broker config the broker accepts."""

from pathlib import Path

from kafkacompat.config import BROKER_CONFIGS

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_broker_config_is_documented():
    text = README.read_text()
    missing = [name for name in BROKER_CONFIGS if f"`{name}`" not in text]
    assert not missing, f"README.md does not document: {missing}"
