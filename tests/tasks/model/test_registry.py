import json
import os
import subprocess
import sys

from inferloop.core.settings import REPO_ROOT, load_settings
from inferloop.tasks.model.registry import resolve_alias

# A serving process where inferloop is not installed: the editable install's import hook is
# removed and the working directory is not the repository.
LOAD_WITHOUT_INFERLOOP = """
import json, sys
sys.meta_path = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")]
sys.path = [p for p in sys.path if p not in ("", {repo!r})]
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model({uri!r})
rows = pd.DataFrame(json.loads(sys.stdin.read()))
scores = model.predict(rows)
encoder, codes = sys.modules["inferloop.core.category_codes"], sys.modules["inferloop.core.feature_codes"]
print(json.dumps({{"rows": len(scores), "encoder_from": encoder.__file__, "codes_from": codes.__file__}}))
"""


def test_the_registered_model_loads_and_predicts_where_inferloop_is_not_installed(champion, tmp_path):
    settings = load_settings()
    ref = resolve_alias.fn(settings.registry, settings.registry.champion_alias)
    example = {column: [0.5] * 3 for column in settings.dataset.numeric_features} | {
        column: ["web", None, "never-seen"] for column in settings.dataset.categorical_features
    }
    repo = str(REPO_ROOT)
    result = subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT_INFERLOOP.format(uri=ref.uri, repo=repo)],
        input=json.dumps(example),
        env={**os.environ, "MLFLOW_TRACKING_URI": settings.registry.tracking_uri},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["rows"] == 3
    assert not loaded["encoder_from"].startswith(repo)  # the copies saved with the model
    assert not loaded["codes_from"].startswith(repo)
