

def test_mean_sd_text_rounds_the_mean_to_the_spread():
    from bdl_src.runs.bnn import mean_sd_text
    assert mean_sd_text(98.0512, 0.0312) == "98.05 ± 0.03"
    assert mean_sd_text(232.61, 19.7) == "233 ± 20"
    assert mean_sd_text(0.064471, 0.0021) == "0.064 ± 0.002"
    assert mean_sd_text(5.0, 0.0) == "5 ± 0"
