"""Synthetic banded human chromosome images with boxes and the paper's 49 labels.

The project's embedded default data: karyograms (ISCN arrangement) and metaphase spreads
drawn from the hg38 cytoband table, see :func:`generate_dataset` (files on disk) and
:func:`render_image` (one image in memory). Command line: ``python -m keras_frcnn.synthetic``.

Modules: ``cytobands`` (band table, ISCN lengths), ``chromosome`` (one chromosome),
``karyotypes`` (which chromosomes a cell has; the l/r/? labelling rules), ``layout`` (karyogram
and metaphase placement), ``clutter`` (nuclei, debris, captions), ``imaging`` (light, blur,
noise), ``scene`` (one image), ``generate`` (the data set writer).
"""

from keras_frcnn.synthetic.chromosome import Appearance, RenderedChromosome, render_chromosome
from keras_frcnn.synthetic.cytobands import load_bands, relative_length
from keras_frcnn.synthetic.generate import generate_dataset, image_rng
from keras_frcnn.synthetic.karyotypes import Karyotype, make_karyotype, parse_karyotype, sample_karyotype
from keras_frcnn.synthetic.scene import DEFAULT_SIZE, MODES, Scene, render_image, render_scene

__all__ = [
    "Appearance",
    "DEFAULT_SIZE",
    "Karyotype",
    "MODES",
    "RenderedChromosome",
    "Scene",
    "generate_dataset",
    "image_rng",
    "load_bands",
    "make_karyotype",
    "parse_karyotype",
    "relative_length",
    "render_chromosome",
    "render_image",
    "render_scene",
    "sample_karyotype",
]
