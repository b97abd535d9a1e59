"""Kernel times from a measured operator table (specs/optables.py reads and validates the file).

load.py         the table as curves in each operator class's natural variables (once per table)
curves.py       their types (Curves, Lazy)
stored.py       the curves as flat arrays in the table's binary copy (specs/optable_store.py)
table_copy.py   the bytes of that copy, as the table and its GPU's spec give them
interpolate.py  the curve arithmetic: 1-D and bilinear interpolation, the measured/clamped blend
transfer.py     the datasheet rooflines the ratios are taken against, and whether (and how) a
                table transfers to another GPU of the same architecture
kernels.py      one kernel's time (GEMM, decode/prefill attention, elementwise) with the
                notices of any clamp, returned together
price.py        one forward pass priced kernel by kernel (tabulated in the token count for sweeps)
"""
