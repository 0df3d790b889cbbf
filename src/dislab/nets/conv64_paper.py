"""The paper-table variant of disentanglement_lib's conv network: 4x4 kernels in all four encoder
layers, as Locatello et al. 2019, Table 1 (and Higgins et al. 2017, Table 1, row 3) print it.

disentanglement_lib's code (``methods/shared/architectures.py::conv_encoder``), which trained the
study's released models, uses 2x2 kernels in encoder layers 3-4 (its issue #23 / PR #35); that is
``net=conv64``, the default. Everything else is ``conv64.py``'s: strides, "same" padding, channels,
separate mean / log-variance heads, the decoder and TensorFlow's initialisation. Encoder parameters
for 1x64x64 and z_dim 10: 382,932.
"""

from dislab.nets.conv64 import Conv64


class Conv64Paper(Conv64):
    kernels = (4, 4, 4, 4)
