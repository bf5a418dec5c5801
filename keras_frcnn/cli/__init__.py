"""The command-line programs: ``test_frcnn.py`` (:mod:`keras_frcnn.cli.test`), ``measure_map.py``
(:mod:`keras_frcnn.cli.measure`) and ``train_frcnn.py`` (:mod:`keras_frcnn.cli.train`), sharing
their flags and input handling through :mod:`keras_frcnn.cli.common`.

Every ``main(argv=None) -> int`` reports bad input as one line on stderr and returns 2.
"""
