"""Train a small segmentation network on synthetic shapes, then add segengine.nn.DenseCRF
and fine-tune end to end; print the held-out mean IoU of the network alone, with
dense_crf post-processing, and with the trained CRF layer.

    python examples/crf_training.py [--quick] [--out result.png]

The code lives in segengine/demos/crf_layer.py so that ``segengine demo`` can run it too.
"""

from segengine.demos.crf_layer import main

if __name__ == "__main__":
    main()
