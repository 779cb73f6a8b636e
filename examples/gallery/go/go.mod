module netkit.example/gallery

go 1.19
