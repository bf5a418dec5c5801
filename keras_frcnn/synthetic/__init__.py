"""Synthetic banded human chromosome images with boxes and the paper's 49 labels.

The project's embedded default data: karyograms (ISCN arrangement) and metaphase spreads
drawn from the hg38 cytoband table, see :func:`generate_dataset` (files on disk) and
:func:`render_image` (one image in memory). Command line: ``python -m keras_frcnn.synthetic``.

Styles: ``gband`` (dark on light, default) and ``qband`` (bright on dark) for both modes;
``framed`` (karyograms only, 416x416 by default) imitates real karyogram exports: bright
chromosomes on a dark field, each pair in a thin numbered frame with centromere ticks, and
print/scan defects (brightness and contrast changes, speckle, blur, JPEG artefacts).

Mode ``composite`` (``--mode composite --from FOLDER``) draws nothing itself: it composes
metaphase spreads from real, labelled chromosomes cut out of real karyograms (train and test
spreads from disjoint source karyograms), see :func:`generate_composite`.

Modules: ``cytobands`` (band table, ISCN lengths), ``chromosome`` (one chromosome),
``karyotypes`` (which chromosomes a cell has; the l/r/? labelling rules), ``layout`` (karyogram
and metaphase placement), ``framed`` (the framed karyogram layout), ``clutter`` (nuclei,
debris, captions, frames), ``imaging`` (light, blur, noise), ``defects`` (print/scan defects of
the framed style), ``scene`` (one image), ``generate`` (the data set writer), ``cutout``
(chromosomes cut out of real karyograms), ``composite`` (spreads of cut-out chromosomes).
"""

from keras_frcnn.synthetic.chromosome import Appearance, RenderedChromosome, render_chromosome
from keras_frcnn.synthetic.composite import compose_spread, generate_composite
from keras_frcnn.synthetic.cutout import cut_out, cut_out_all
from keras_frcnn.synthetic.cytobands import load_bands, relative_length
from keras_frcnn.synthetic.generate import generate_dataset, image_rng
from keras_frcnn.synthetic.karyotypes import Karyotype, make_karyotype, parse_karyotype, sample_karyotype
from keras_frcnn.synthetic.scene import DEFAULT_SIZE, MODES, STYLE_SIZE, Scene, render_image, render_scene

__all__ = [
    "Appearance",
    "DEFAULT_SIZE",
    "Karyotype",
    "MODES",
    "RenderedChromosome",
    "STYLE_SIZE",
    "Scene",
    "compose_spread",
    "cut_out",
    "cut_out_all",
    "generate_composite",
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
