"""A PyTorch training loop fed by voxaug (the README's example). Run `voxaug demo` first for the phantom,
or pass IMAGE LABEL paths: python examples/python/train.py [IMAGE LABEL]"""
import sys
import torch, voxaug, voxaug.torch

image, label = sys.argv[1:3] if len(sys.argv) > 2 else ("voxaug-demo/input/image.nii.gz", "voxaug-demo/input/label.nii.gz")
subjects = [{"image": image, "label": label, "id": n} for n in range(8)]
pipe = voxaug.Pipeline.from_dict({"transforms": [
    {"type": "zscore"}, {"type": "random_affine", "degrees": 10, "scales": 0.1},
    {"type": "random_flip", "axes": ["LR"]}, {"type": "label_crop", "size": [48, 48, 32]},
    {"type": "random_gamma", "log_gamma": 0.3}]})
data = voxaug.torch.Dataset(subjects, pipe, labels=("label",), batch_size=4, seed=0, device="auto")
loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=2)
net = torch.nn.Sequential(torch.nn.Conv3d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv3d(8, 5, 1))
opt = torch.optim.Adam(net.parameters(), lr=1e-2)
for epoch in range(3):
    data.set_epoch(epoch)
    for batch in loader:
        loss = torch.nn.functional.cross_entropy(net(batch["image"]), batch["label"][:, 0].long())
        opt.zero_grad(); loss.backward(); opt.step()
    print(f"epoch {epoch}: loss {loss.item():.3f} on subjects {batch['id']}")
