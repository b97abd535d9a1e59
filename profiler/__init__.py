"""Empirical profiler: measure TTFT and TPOT with vLLM or a plain-torch decoder.

Modules (all light at import time; torch, vLLM and NVML are imported inside functions):

- ``timer``        the one timing backend (perf_counter + device synchronize)
- ``torch_runner`` a compact Llama/Mistral/Qwen2 decoder in plain torch (CPU or GPU)
- ``vllm_runner``  an embedded ``vllm.LLM`` with dummy weights (GPU)
- ``sweep``        the resumable batch x prompt x output sweep writing the measurement CSV
- ``fingerprint``  GPU (NVML) or CPU identity, library versions
- ``cli``          the ``perfmodel profile`` command
"""
