"""Option errors: the library names its parameters, a command its flags."""

import argparse

from keras_frcnn.errors import OptionError, UserError, flag_names, run_cli


def parser():
    made = argparse.ArgumentParser()
    made.add_argument("--num_epochs", type=int)
    made.add_argument("-b", "--batch-size", type=int)
    made.add_argument("--lr-drop-at", dest="lr_drop_at", nargs="+")
    made.add_argument("path")
    return made


def test_flag_names_take_the_longest_flag_and_aliases():
    assert flag_names(parser(), lr_drops="--lr-drop-at") == {
        "help": "--help", "num_epochs": "--num_epochs", "batch_size": "--batch-size", "lr_drop_at": "--lr-drop-at",
        "lr_drops": "--lr-drop-at"}


def test_an_option_error_reads_in_parameter_names_and_in_flags(capsys):
    error = OptionError("{0} and {1} must be at least 1, not {value} in {path}", "num_epochs", "batch_size",
                        value=0, path="runs/{odd}")
    assert isinstance(error, UserError) and str(error) == "num_epochs and batch_size must be at least 1, not 0 in runs/{odd}"
    assert error.named({"batch_size": "--batch-size"}).startswith("num_epochs and --batch-size must")

    def fails(argv):
        raise error

    assert run_cli(fails, [], flag_names(parser())) == 2
    assert capsys.readouterr().err == "error: --num_epochs and --batch-size must be at least 1, not 0 in runs/{odd}\n"
    assert run_cli(fails, []) == 2  # no flags given: the parameter names
    assert capsys.readouterr().err == "error: num_epochs and batch_size must be at least 1, not 0 in runs/{odd}\n"


def test_a_train_option_error_names_the_flag_of_the_command(tmp_path, capsys):
    from keras_frcnn.cli.train import main

    data = tmp_path / "train.csv"
    assert main(["-p", str(data), "--lr-drop-at", "1.5", "--output", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err == ("error: --lr-drop-at takes fractions of training in (0, 1) and "
                                       "--lr-drop-factor a value in (0, 1]\n")  # before the missing data
