import subprocess
import sys


def test_importing_the_contract_pulls_in_nothing_heavy() -> None:
    code = (
        "import sys, artifact_contract; "
        "heavy = {'sklearn', 'mlflow', 'boto3', 'numpy', 'pandas', 'skops'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
