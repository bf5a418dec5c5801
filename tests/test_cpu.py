"""The CPU description every benchmark records."""

from keras_frcnn.cpu import describe_cpu, has_native_bfloat16

XEON = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8488C
flags\t\t: fpu avx2 fma avx512f avx512_bf16 amx_bf16 amx_tile

processor\t: 1
model name\t: a second processor is not read
"""
EPYC = """processor\t: 0
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC
flags\t\t: fpu sse avx avx2 fma
"""


def test_model_family_and_features_of_the_first_processor():
    xeon = describe_cpu(XEON)
    assert (xeon["model"], xeon["family"], xeon["model_number"]) == ("Intel(R) Xeon(R) Platinum 8488C", "6", "143")
    assert xeon["features"] == ["avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"]
    assert has_native_bfloat16(xeon)
    epyc = describe_cpu(EPYC)
    assert (epyc["model"], epyc["features"]) == ("AMD EPYC", ["avx2", "fma"])
    assert not has_native_bfloat16(epyc)
    assert epyc["cores"] >= 1


def test_without_cpuinfo_the_platform_names_the_processor():
    described = describe_cpu("")
    assert described["model"] and described["features"] == [] and described["family"] is None
