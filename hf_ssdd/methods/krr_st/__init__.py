"""KRR-ST (Lee et al., *Self-Supervised Dataset Distillation for Transfer Learning*, ICLR 2024).

    config.py      KRRSTConfig: the paper's CIFAR-100 protocol as defaults
    krr.py         the inner problem in closed form: kernel ridge regression onto the learnable targets
    pool.py        ModelPool: the learners whose features the kernel is taken with, trained online on (X_s, Y_s)
    memory.py      the peak memory of a step, estimated before step 1, and the chunk sizes that fit
    distiller.py   KRRSTDistiller: the outer step (KRR loss on a real batch, Adam, pool update)
"""
