"""Compare optimizers for Faster R-CNN: ``python compare_optimizers.py -p annotations.csv`` (see ``--help``)."""

import sys

from keras_frcnn.cli.compare import main

if __name__ == "__main__":
    sys.exit(main())
