"""Graph passes over onnx-graphsurgeon graphs: normalize, receptive field, tile, split, stages."""
