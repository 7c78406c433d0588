"""What the edge server (`flcompile serve`) and the device runner (`flcompile run`) share.

A compiled OUT as a list of stages to run (`plan_index`), the stage models (`stage_models`),
and the KServe v2 conventions both sides speak (`protocol`). Nothing here imports Triton.
"""
