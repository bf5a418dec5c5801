import sys

from keras_frcnn.cli.measure import main

sys.exit(main())
