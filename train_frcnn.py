"""Train Faster R-CNN: ``python train_frcnn.py -p annotations.csv`` (see ``--help``)."""

import sys

from keras_frcnn.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
