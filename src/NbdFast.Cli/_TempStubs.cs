// TEMPORARY: removed when the helper branches merge.
namespace NbdFast.Devices
{
    internal sealed class SliceDevice(IBlockDevice inner, long offset, long? length, bool ownsInner) : IBlockDevice
    {
        public long Size => length ?? inner.Size - offset;
        public BlockDeviceCapabilities Capabilities => inner.Capabilities; public BlockSizeConstraints BlockSize => inner.BlockSize;
        public ValueTask ReadAsync(long o, Memory<byte> d, CancellationToken c = default) => inner.ReadAsync(o + offset, d, c);
        public ValueTask WriteAsync(long o, ReadOnlyMemory<byte> s, WriteFlags f, CancellationToken c = default) => inner.WriteAsync(o + offset, s, f, c);
        public ValueTask FlushAsync(CancellationToken c = default) => inner.FlushAsync(c);
        public ValueTask DisposeAsync() => ownsInner ? inner.DisposeAsync() : default;
    }
    internal sealed class CopyOnWriteDevice(IBlockDevice b, string? overlayDirectory = null, bool ownsBase = false) : IBlockDevice
    {
        public long Size => b.Size;
        public BlockDeviceCapabilities Capabilities => b.Capabilities; public BlockSizeConstraints BlockSize => b.BlockSize;
        public ValueTask ReadAsync(long o, Memory<byte> d, CancellationToken c = default) => b.ReadAsync(o, d, c);
        public ValueTask WriteAsync(long o, ReadOnlyMemory<byte> s, WriteFlags f, CancellationToken c = default) => default;
        public ValueTask FlushAsync(CancellationToken c = default) => default;
        public ValueTask DisposeAsync() => ownsBase ? b.DisposeAsync() : default;
        public void Discard() { _ = overlayDirectory; }
    }
}
namespace NbdFast.Cli
{
    internal sealed class MetricsEndpoint : IDisposable
    {
        public string Url => "";
        public static MetricsEndpoint Start(string a) => new();
        public void Dispose() { }
    }
}
