"""torch_interop.py: PyTorch's half of the interop test; torch_interop.cpp is normgrad's half.

    /usr/bin/python3 torch_interop.py to_torch PROGRAM     PyTorch loads what normgrad trained
    /usr/bin/python3 torch_interop.py from_torch PROGRAM   normgrad loads what PyTorch trained
    /usr/bin/python3 torch_interop.py gpt_to_torch PROGRAM     the same for the tiny GPT
    /usr/bin/python3 torch_interop.py gpt_from_torch PROGRAM

PROGRAM is the built torch_interop. Both directions use the same three models, written here in PyTorch
and in torch_interop.cpp in normgrad, with the same names (mlp, cnn, text), and the same files:
<model>.safetensors holds the state_dict, <model>_io.safetensors the input, the output in eval mode, the
output in train mode (batch statistics), and the buffers after that train-mode forward ("after.<name>").

to_torch: normgrad trains each model three steps and writes both files; PyTorch builds the model, loads
the state_dict with load_state_dict(strict=True) (every name, shape and dtype must match, none left
over), and must compute the same outputs and buffers. from_torch: PyTorch trains and writes, normgrad
loads and compares. Float32 tolerance: |got - want| <= 1e-5 + 1e-4 |want|.

gpt_to_torch and gpt_from_torch do the same for the tiny GPT of normgrad's examples/char_gpt.cpp
(examples/common/gpt.h), written here as nanoGPT's model.py writes it, with its parameter names (wte, wpe,
h.<i>.ln_1, h.<i>.attn.c_attn, ..., lm_head): three AdamW steps, then gpt.safetensors (the state_dict) and
gpt_io.safetensors (the input ids and the eval-mode logits), compared to |got - want| < 1e-5.

The files are read and written with json and struct only (the safetensors package is not needed).
Exits 77, which meson reports as a skipped test, when torch cannot be imported: Debian's python3-torch
is not installed (scripts/check_torch_interop.sh installs it).
"""
import json
import math
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


# The tiny GPT of torch_interop.cpp (examples/common/gpt.h), nanoGPT's model with LayerNorm:
#   idx [B, T] -> wte(idx) + wpe(0..T-1) -> n_layer x { x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)) }
#              -> ln_f -> lm_head (no bias) -> logits [B, T, vocab]
GPT_CONFIG = {"vocab": 11, "block": 8, "n_layer": 2, "n_head": 2, "n_embd": 16}
GPT_IDS_SHAPE = (3, 8)


class CausalSelfAttention(nn.Module):
    """x [B, T, C] -> [B, T, C]: softmax(q k^T / sqrt(head_size)) v per head, position t seeing 0..t only."""

    def __init__(self, n_embd, n_head, block):
        super().__init__()
        self.n_head = n_head
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        # not persistent: the mask is no part of the state_dict (normgrad's layer has none either)
        self.register_buffer("bias", torch.tril(torch.ones(block, block)).view(1, 1, block, block), persistent=False)

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        # each [B, T, C] -> [B, n_head, T, head_size]
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
        att = nn.functional.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class Mlp(nn.Module):
    def __init__(self, n_embd):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd)
        self.c_proj = nn.Linear(4 * n_embd, n_embd)

    def forward(self, x):
        return self.c_proj(nn.functional.gelu(self.c_fc(x)))  # the erf GELU


class Block(nn.Module):
    def __init__(self, n_embd, n_head, block):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head, block)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = Mlp(n_embd)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Gpt(nn.Module):
    def __init__(self, vocab, block, n_layer, n_head, n_embd):
        super().__init__()
        self.wte = nn.Embedding(vocab, n_embd)
        self.wpe = nn.Embedding(block, n_embd)
        self.h = nn.ModuleList([Block(n_embd, n_head, block) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab, bias=False)

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.size(1)))
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def gpt_logits(model, ids):
    """The eval-mode logits [B, T, vocab]."""
    with torch.no_grad():
        return model.eval()(ids)


def outputs_of(model, model_input):
    """The eval-mode output, the train-mode output, then the buffers that train-mode forward left."""
    with torch.no_grad():
        io = {"output_eval": model.eval()(model_input), "output_train": model.train()(model_input)}
        io.update({"after." + name: buffer.clone() for name, buffer in model.named_buffers()})
    return io


def matches(what, got, want, relative=1e-4):
    if got.shape != want.shape or got.dtype != want.dtype:
        print(f"  {what:<32} MISMATCH: PyTorch gives {list(got.shape)} {got.dtype}, "
              f"normgrad {list(want.shape)} {want.dtype}")
        return False
    diff = (got.double() - want.double()).abs()
    within = bool((diff <= 1e-5 + relative * want.double().abs()).all())
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


def gpt_to_torch(program, folder):
    subprocess.run([program, "gpt_export", folder], check=True)
    print("PyTorch runs the model normgrad trained: gpt")
    model = Gpt(**GPT_CONFIG)
    model.load_state_dict(read_safetensors(f"{folder}/gpt.safetensors"), strict=True)
    want = read_safetensors(f"{folder}/gpt_io.safetensors")
    return matches("logits_eval", gpt_logits(model, want["input"]), want["logits_eval"], relative=0)


def gpt_from_torch(program, folder):
    torch.manual_seed(0)
    model = Gpt(**GPT_CONFIG)
    ids = torch.randint(0, GPT_CONFIG["vocab"], GPT_IDS_SHAPE)
    targets = torch.randint(0, GPT_CONFIG["vocab"], GPT_IDS_SHAPE)
    adamw = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(3):
        logits = model(ids)  # [B, T, V]
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        adamw.zero_grad()
        loss.backward()
        adamw.step()
    write_safetensors(f"{folder}/gpt.safetensors", model.state_dict())
    write_safetensors(f"{folder}/gpt_io.safetensors", {"input": ids, "logits_eval": gpt_logits(model, ids)})
    print("PyTorch trained and saved gpt")
    return subprocess.run([program, "gpt_import", folder]).returncode == 0


def main():
    direction, program = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        directions = {"to_torch": to_torch, "from_torch": from_torch, "gpt_to_torch": gpt_to_torch,
                      "gpt_from_torch": gpt_from_torch}
        all_match = directions[direction](program, folder)
    print("the same outputs in both" if all_match else "FAILED: the outputs differ")
    sys.exit(0 if all_match else 1)


if __name__ == "__main__":
    main()
