import sys

from keras_frcnn.cli.test import main

sys.exit(main())
