using NbdFast.Devices;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Devices;

/// <summary><see cref="CopyOnWriteDevice.Discard"/>: what a snapshot export does when its last client leaves.</summary>
public sealed class CopyOnWriteDiscardTests
{
    private const int Size = 1 << 20;

    [Fact]
    public async Task Discard_ForgetsWritesZeroesAndTrims_AndGivesTheSpaceBack()
    {
        using var temp = new TempDirectory();
        var baseDevice = new MemoryDevice(Size);
        byte[] pattern = new byte[Size];
        Random.Shared.NextBytes(pattern);
        await baseDevice.WriteAsync(0, pattern, WriteFlags.None);
        await using var cow = new CopyOnWriteDevice(baseDevice, temp.FullPath, clusterSize: 4096);
        await cow.WriteAsync(100, new byte[300_000], WriteFlags.None);
        await cow.WriteZeroesAsync(500_000, 100_000, WriteFlags.None);
        await cow.TrimAsync(700_000, 8192, WriteFlags.None);
        Assert.True(cow.OverlayBytes > 0);

        cow.Discard();

        byte[] after = new byte[Size];
        await cow.ReadAsync(0, after);
        Assert.True(after.AsSpan().SequenceEqual(pattern), "the device must read as its base again");
        Assert.Equal(0, cow.OverlayBytes);
        Assert.Equal(0, cow.Overlay.AllocatedBytes);

        // And it is usable again afterwards.
        await cow.WriteAsync(0, new byte[] { 1, 2, 3 }, WriteFlags.None);
        byte[] head = new byte[4];
        await cow.ReadAsync(0, head);
        Assert.Equal(new byte[] { 1, 2, 3, pattern[3] }, head);
    }
}
