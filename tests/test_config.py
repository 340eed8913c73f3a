"""Configuration: TOML loading, precedence, validation, step bounds."""

import pytest

from dist_logreg.errors import UsageError
from dist_logreg.train.config import DEFAULT_STEPS, TrainConfig, total_steps
from dist_logreg.train.options import load_toml, resolve
from dist_logreg.train.validation import validate


def write(tmp_path, text):
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def test_toml_values_and_cli_precedence(tmp_path):
    path = write(
        tmp_path, 'batch_size = 512\nlr = 0.1\nsteps = 7\ndtype = "float32"\nmomentum = 0.9\n'
    )
    cfg = resolve(load_toml(path), {"lr": 0.2})
    assert cfg.batch_size == 512 and cfg.steps == 7 and cfg.dtype == "float32"
    assert cfg.lr == 0.2  # the command line wins over the file
    assert cfg.momentum == 0.9
    assert cfg.features == TrainConfig().features  # untouched keys keep their defaults


def test_dashed_keys_accepted(tmp_path):
    assert load_toml(write(tmp_path, "batch-size = 64\n")) == {"batch_size": 64}


def test_int_where_float_expected_is_fine(tmp_path):
    assert resolve(load_toml(write(tmp_path, "lr = 1\n")), {}).lr == 1


@pytest.mark.parametrize(
    "text, message",
    [
        ("batch_sise = 5\n", "unknown key 'batch_sise'"),
        ("lr = \n", "malformed TOML"),
        ('steps = "ten"\n', "key 'steps': expected int, got 'ten'"),
        ("lr = true\n", "key 'lr': expected int or float, got True"),
        ("[train]\nlr = 1\n", "unknown key 'train'"),
    ],
)
def test_bad_config_files(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(UsageError, match="config file .*run.toml") as info:
        load_toml(path)
    assert message in str(info.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        load_toml(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    "values, message",
    [
        ({"lr": 0.0}, "--lr: expected a number > 0, got 0.0"),
        ({"lr": -1.0}, "--lr"),
        ({"steps": 0}, "--steps: expected an integer >= 1, got 0"),
        ({"batch_size": 0}, "--batch-size"),
        ({"epochs": -1.0}, "--epochs"),
        ({"momentum": 1.0}, "--momentum"),
        ({"l2": -0.1}, "--l2"),
        ({"dtype": "float16"}, "--dtype: expected float32 or float64, got 'float16'"),
        ({"samples": 0}, "--samples"),
        ({"lr": float("inf")}, "--lr: expected a finite number, got inf"),
        ({"epochs": float("inf")}, "--epochs: expected a finite number, got inf"),
        ({"comm_timeout": float("inf")}, "--comm-timeout: expected a finite number"),
        ({"seed": -1}, "--seed: expected an integer >= 0"),
        ({"data": ""}, "--data: expected a non-empty value, got ''"),
        ({"label_column": ""}, "--label-column: expected a non-empty value"),
        ({"bucket_bytes": 7}, "at least one element (8 bytes at float64), got 7"),
        ({"bucket_bytes": 3, "dtype": "float32"}, "(4 bytes at float32), got 3"),
    ],
)
def test_static_validation(values, message):
    with pytest.raises(UsageError) as info:
        resolve({}, values)
    assert message in str(info.value)


def test_validation_against_world_and_data():
    cfg = TrainConfig(batch_size=2)
    with pytest.raises(UsageError, match=r"--batch-size: expected at least the world size \(3"):
        validate(cfg, world_size=3)
    with pytest.raises(UsageError, match=r"number of samples: expected at least the world size"):
        validate(TrainConfig(batch_size=4), world_size=4, n_samples=3)
    with pytest.raises(UsageError, match=r"at most the number of samples \(10\), got 11"):
        validate(TrainConfig(batch_size=11), world_size=1, n_samples=10)
    validate(TrainConfig(batch_size=3), world_size=3, n_samples=3)  # the tightest legal case


def test_total_steps_takes_the_tighter_bound():
    n = 1000  # 10 steps per epoch at batch 100
    assert total_steps(TrainConfig(batch_size=100), n) == DEFAULT_STEPS
    assert total_steps(TrainConfig(batch_size=100, steps=7), n) == 7
    assert total_steps(TrainConfig(batch_size=100, epochs=2), n) == 20
    assert total_steps(TrainConfig(batch_size=100, epochs=2, steps=15), n) == 15
    assert total_steps(TrainConfig(batch_size=100, epochs=2, steps=50), n) == 20
    assert total_steps(TrainConfig(batch_size=100, epochs=0.01), n) == 1


def test_a_fault_that_would_never_fire_is_refused():
    cfg = TrainConfig(batch_size=10, steps=5, inject_fault="kill:rank=0:step=5")
    with pytest.raises(UsageError, match=r"--inject-fault step: expected a step <= 4 \(the last\)"):
        validate(cfg, world_size=1, n_samples=100)
    validate(TrainConfig(batch_size=10, steps=5, inject_fault="kill:rank=0:step=4"), 1, 100)


def test_toml_inf_and_non_utf8_are_refused(tmp_path):
    with pytest.raises(UsageError, match="--lr: expected a finite number, got inf"):
        resolve(load_toml(write(tmp_path, "lr = inf\n")), {})
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"# caf\xe9\nlr = 1\n")
    with pytest.raises(UsageError, match="expected UTF-8 text"):
        load_toml(path)


@pytest.mark.parametrize("command", [["train"], ["bench"], ["scale", "--ranks", "1,2"]])
@pytest.mark.parametrize("flag", ["--cost-model", "--model"])
def test_cost_model_flag_and_its_documented_alias(command, flag):
    """``--cost-model`` says which model; ``--model`` stays for the scripts that use it."""
    from dist_logreg.cli.main import build_parser

    args = build_parser().parse_args([*command, flag, "m.json"])
    assert args.model == "m.json"
    text = build_parser()._subparsers._group_actions[0].choices[command[0]].format_help()
    text = " ".join(text.split())  # help wraps its lines
    assert "--cost-model" in text and "--model: the same, kept for scripts" in text
