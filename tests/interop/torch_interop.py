"""torch_interop.py: PyTorch's half of the interop test; torch_interop.cpp is normgrad's half.

    /usr/bin/python3 torch_interop.py to_torch PROGRAM     PyTorch loads what normgrad trained
    /usr/bin/python3 torch_interop.py from_torch PROGRAM   normgrad loads what PyTorch trained

PROGRAM is the built torch_interop. Both directions use the same three models, written here in PyTorch
and in torch_interop.cpp in normgrad, with the same names (mlp, cnn, text), and the same files:
<model>.safetensors holds the state_dict, <model>_io.safetensors the input, the output in eval mode, the
output in train mode (batch statistics), and the buffers after that train-mode forward ("after.<name>").

to_torch: normgrad trains each model three steps and writes both files; PyTorch builds the model, loads
the state_dict with load_state_dict(strict=True) (every name, shape and dtype must match, none left
over), and must compute the same outputs and buffers. from_torch: PyTorch trains and writes, normgrad
loads and compares. Float32 tolerance: |got - want| <= 1e-5 + 1e-4 |want|.

The files are read and written with json and struct only (the safetensors package is not needed).
Exits 77, which meson reports as a skipped test, when torch cannot be imported: Debian's python3-torch
is not installed (scripts/check_torch_interop.sh installs it).
"""
import json
import struct
import subprocess
import sys
import tempfile

try:
    import torch
    from torch import nn
except ImportError:
    print("skipped: /usr/bin/python3 cannot import torch (Debian package python3-torch)")
    sys.exit(77)

# safetensors dtype -> (struct format letter, torch dtype)
DTYPES = {"F32": ("f", torch.float32), "F64": ("d", torch.float64), "I64": ("q", torch.int64)}
SAFETENSORS_DTYPE = {torch_dtype: name for name, (_, torch_dtype) in DTYPES.items()}


def read_safetensors(path):
    """{name: tensor} in file order. A file is 8 bytes of header length N (little-endian), N bytes of
    JSON {name: {dtype, shape, data_offsets}}, then the tensors' bytes."""
    with open(path, "rb") as f:
        data = f.read()
    (header_size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_size])
    header.pop("__metadata__", None)
    body = data[8 + header_size:]
    tensors = {}
    for name, entry in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
        letter, dtype = DTYPES[entry["dtype"]]
        begin, end = entry["data_offsets"]
        count = (end - begin) // struct.calcsize(letter)
        values = struct.unpack(f"<{count}{letter}", body[begin:end])
        tensors[name] = torch.tensor(values, dtype=dtype).reshape(entry["shape"])
    return tensors


def write_safetensors(path, tensors):
    """Writes {name: tensor} in the layout read_safetensors reads; the header is padded to 8 bytes."""
    header, chunks, offset = {}, [], 0
    for name, tensor in tensors.items():
        dtype = SAFETENSORS_DTYPE[tensor.dtype]
        chunk = struct.pack(f"<{tensor.numel()}{DTYPES[dtype][0]}", *tensor.detach().flatten().tolist())
        header[name] = {"dtype": dtype, "shape": list(tensor.shape), "data_offsets": [offset, offset + len(chunk)]}
        chunks.append(chunk)
        offset += len(chunk)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


# The models of torch_interop.cpp: (model, input maker, output shape).
def make_models():
    return {
        "mlp": (nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3)),
                lambda: torch.randn(8, 6), (8, 3)),
        "cnn": (nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                              nn.Linear(4 * 5 * 5, 3)),
                lambda: torch.randn(4, 2, 5, 5), (4, 3)),
        "text": (nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.LayerNorm(12), nn.Linear(12, 16),
                               nn.BatchNorm1d(16), nn.Tanh(), nn.Linear(16, 10)),
                 lambda: torch.randint(0, 10, (8, 3)), (8, 10)),
    }


def outputs_of(model, model_input):
    """The eval-mode output, the train-mode output, then the buffers that train-mode forward left."""
    with torch.no_grad():
        io = {"output_eval": model.eval()(model_input), "output_train": model.train()(model_input)}
        io.update({"after." + name: buffer.clone() for name, buffer in model.named_buffers()})
    return io


def matches(what, got, want):
    if got.shape != want.shape or got.dtype != want.dtype:
        print(f"  {what:<32} MISMATCH: PyTorch gives {list(got.shape)} {got.dtype}, "
              f"normgrad {list(want.shape)} {want.dtype}")
        return False
    diff = (got.double() - want.double()).abs()
    within = bool((diff <= 1e-5 + 1e-4 * want.double().abs()).all())
    print(f"  {what:<32} max |PyTorch - normgrad| {diff.max().item():.2e}  {'ok' if within else 'MISMATCH'}")
    return within


def to_torch(program, folder):
    subprocess.run([program, "export", folder], check=True)
    all_match = True
    for name, (model, _, _) in make_models().items():
        print(f"PyTorch runs the model normgrad trained: {name}")
        model.load_state_dict(read_safetensors(f"{folder}/{name}.safetensors"), strict=True)
        want = read_safetensors(f"{folder}/{name}_io.safetensors")
        for what, got in outputs_of(model, want["input"]).items():
            if what not in want:
                print(f"  {what:<32} MISMATCH: normgrad's file does not have it")
                all_match = False
            else:
                all_match = matches(what, got, want[what]) and all_match
    return all_match


def from_torch(program, folder):
    torch.manual_seed(0)
    for name, (model, make_input, output_shape) in make_models().items():
        model_input = make_input()
        target = torch.randn(output_shape)
        sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        for _ in range(3):
            loss = nn.functional.mse_loss(model(model_input), target)
            sgd.zero_grad()
            loss.backward()
            sgd.step()
        write_safetensors(f"{folder}/{name}.safetensors", model.state_dict())
        write_safetensors(f"{folder}/{name}_io.safetensors", {"input": model_input, **outputs_of(model, model_input)})
        print(f"PyTorch trained and saved {name}")
    return subprocess.run([program, "import", folder]).returncode == 0


def main():
    direction, program = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        all_match = {"to_torch": to_torch, "from_torch": from_torch}[direction](program, folder)
    print("the same outputs in both" if all_match else "FAILED: the outputs differ")
    sys.exit(0 if all_match else 1)


if __name__ == "__main__":
    main()
