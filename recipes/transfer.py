"""Transfer to a labelled target as an `accelerate launch` entry point (the same code as `hf-ssdd transfer`).

    accelerate launch --config_file recipes/accelerate/single_gpu.yaml recipes/transfer.py \
        --pretrained outputs/pretrained --target uoft-cs/cifar10 --image_column img --output_dir outputs/cifar10
"""

import sys

from hf_ssdd.cli import main

if __name__ == "__main__":
    main(["transfer", *sys.argv[1:]])
