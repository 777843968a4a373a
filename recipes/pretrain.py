"""Pre-training on a distilled set as an `accelerate launch` entry point (the same code as `hf-ssdd pretrain`).

    accelerate launch --config_file recipes/accelerate/single_gpu.yaml recipes/pretrain.py \
        --distilled outputs/fashion-mnist-krr-st --output_dir outputs/pretrained
"""

import sys

from hf_ssdd.cli import main

if __name__ == "__main__":
    main(["pretrain", *sys.argv[1:]])
