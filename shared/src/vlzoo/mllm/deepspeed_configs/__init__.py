"""DeepSpeed JSON configs (data only; a package so the JSON files ship in wheels): ``zero2.json``,
``zero3.json``, ``zero3_offload.json``. Read them with :func:`vlzoo.mllm.deepspeed_config`."""
