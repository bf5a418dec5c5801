import sys

from keras_frcnn.cli.karyotype import main

sys.exit(main())
