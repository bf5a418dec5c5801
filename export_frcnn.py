"""Export a trained model: ``python export_frcnn.py --model RUN --format saved_model --output DIR`` (see ``--help``)."""

import sys

from keras_frcnn.cli.export import main

if __name__ == "__main__":
    sys.exit(main())
