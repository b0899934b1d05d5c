import pytest

from artifact_contract import VersionError, format_version, is_version, next_version, parse_version


def test_parse_and_format_round_trip() -> None:
    assert parse_version("v001") == 1
    assert parse_version("v042") == 42
    assert parse_version("v1000") == 1000
    assert format_version(7) == "v007"
    assert format_version(parse_version("v123")) == "v123"


@pytest.mark.parametrize(
    "text", ["", "v1", "v01", "001", "V001", "v000", "v001 ", "latest", "v-01"]
)
def test_parse_refuses_non_versions(text: str) -> None:
    with pytest.raises(VersionError, match="not a model version"):
        parse_version(text)
    assert not is_version(text)


def test_format_refuses_zero() -> None:
    with pytest.raises(VersionError):
        format_version(0)


def test_next_version_ignores_other_names_and_gaps() -> None:
    assert next_version([]) == "v001"
    assert next_version(["v001", "v002"]) == "v003"
    assert next_version(["v001", "v009", ".staging-abc", "latest"]) == "v010"
    assert next_version(["v999"]) == "v1000"
