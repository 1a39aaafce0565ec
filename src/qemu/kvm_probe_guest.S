# The KVM probe guest: a 512-byte boot sector that walks the path a real kernel takes —
# real mode -> protected mode -> long mode with paging — touches 62 MiB of memory, then
# reports "RPLM" on the serial port and exits QEMU through isa-debug-exit (exit code 67).
# hearth runs it under KVM and under TCG and only trusts KVM if it finishes, and finishes no
# slower than TCG: on hosts where /dev/kvm opens but nested KVM is broken, it is ~10x slower.
    .code16
    .globl _start
_start:
    cli
    xorw %ax, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw $0x7c00, %sp
    movb $'R', %al
    movw $0x3f8, %dx
    outb %al, %dx
    lgdt gdt_desc
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmp $0x08, $pm32
    .code32
pm32:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movb $'P', %al
    movw $0x3f8, %dx
    outb %al, %dx
    # Page tables: PML4 at 0x1000, PDPT at 0x2000, PD at 0x3000 (32 x 2 MiB pages).
    movl $0x1000, %edi
    xorl %eax, %eax
    movl $3072, %ecx
    rep stosl
    movl $0x2003, 0x1000
    movl $0x3003, 0x2000
    movl $0x3000, %edi
    movl $0x83, %eax
    movl $32, %ecx
2:  movl %eax, (%edi)
    addl $0x200000, %eax
    addl $8, %edi
    loop 2b
    movl $0x1000, %eax
    movl %eax, %cr3
    movl %cr4, %eax
    orl $0x20, %eax          # PAE
    movl %eax, %cr4
    movl $0xC0000080, %ecx   # EFER
    rdmsr
    orl $0x100, %eax         # LME
    wrmsr
    movl %cr0, %eax
    orl $0x80000000, %eax    # PG
    movl %eax, %cr0
    ljmp $0x18, $lm64
    .code64
lm64:
    movb $'L', %al
    movw $0x3f8, %dx
    outb %al, %dx
    movq $0x200000, %rdi
3:  movq %rdi, (%rdi)
    addq $4096, %rdi
    cmpq $0x4000000, %rdi
    jb 3b
    movb $'M', %al
    outb %al, %dx
    movb $0x21, %al
    outb %al, $0xf4
1:  hlt
    jmp 1b
    .p2align 3
gdt:
    .quad 0
    .quad 0x00cf9a000000ffff   # 0x08 code32
    .quad 0x00cf92000000ffff   # 0x10 data
    .quad 0x00af9a000000ffff   # 0x18 code64
gdt_desc:
    .word gdt_desc - gdt - 1
    .long gdt
    .org 510
    .byte 0x55, 0xaa
