namespace NbdFast.Buffers;

/// <summary>A page-aligned block of native memory from an <see cref="AlignedBufferPool"/>. Never moves, so the kernel may use it.</summary>
internal readonly unsafe struct NativeBuffer(byte* pointer, int capacity, int sizeClass)
{
    public byte* Pointer { get; } = pointer;
    public int Capacity { get; } = capacity;
    /// <summary>Index of the pool's size class, or -1 for an oversized one-off allocation.</summary>
    public int SizeClass { get; } = sizeClass;
    public bool IsEmpty => Pointer == null;
    public Span<byte> Span => new(Pointer, Capacity);
}
