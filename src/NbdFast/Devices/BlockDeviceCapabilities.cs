namespace NbdFast.Devices;

/// <summary>Optional abilities of a block device; they decide which transmission flags are advertised.</summary>
[Flags]
public enum BlockDeviceCapabilities
{
    /// <summary>Read and write only.</summary>
    None = 0,
    /// <summary>The device cannot be written (the export is read-only whatever the host asks).</summary>
    ReadOnly = 1 << 0,
    /// <summary><see cref="IBlockDevice.FlushAsync"/> does real work (a write cache exists).</summary>
    Flush = 1 << 1,
    /// <summary>Writes honour <see cref="WriteFlags.Fua"/>.</summary>
    Fua = 1 << 2,
    /// <summary><see cref="IBlockDevice.TrimAsync"/> is implemented.</summary>
    Trim = 1 << 3,
    /// <summary><see cref="IBlockDevice.WriteZeroesAsync"/> is implemented.</summary>
    WriteZeroes = 1 << 4,
    /// <summary>Write-zeroes can answer <see cref="WriteFlags.FastZero"/> honestly.</summary>
    FastZero = 1 << 5,
    /// <summary><see cref="IBlockDevice.CacheAsync"/> prefetches.</summary>
    Cache = 1 << 6,
    /// <summary><see cref="IBlockDevice.GetExtentsAsync"/> reports real allocation.</summary>
    BlockStatus = 1 << 7,
    /// <summary>The medium is rotational (clients may sort requests).</summary>
    Rotational = 1 << 8,
    /// <summary>Every connection sees the same data and a flush on one covers writes completed on all.</summary>
    MultiConn = 1 << 9,
}

/// <summary>Flags that modify a write-type operation.</summary>
[Flags]
public enum WriteFlags
{
    /// <summary>No flags.</summary>
    None = 0,
    /// <summary>Force unit access: durable before completion.</summary>
    Fua = 1 << 0,
    /// <summary>Write-zeroes must not deallocate.</summary>
    NoHole = 1 << 1,
    /// <summary>Write-zeroes must fail with ENOTSUP rather than be slow.</summary>
    FastZero = 1 << 2,
}

/// <summary>Block size constraints: minimum, preferred and maximum payload, in bytes.</summary>
/// <param name="Minimum">Smallest addressable unit (a power of two, at most 64 KiB).</param>
/// <param name="Preferred">Preferred request size and alignment (a power of two).</param>
/// <param name="MaximumPayload">Largest READ/WRITE payload accepted.</param>
public readonly record struct BlockSizeConstraints(uint Minimum, uint Preferred, uint MaximumPayload)
{
    /// <summary>The protocol's defaults: 1 / 4096 / 32 MiB.</summary>
    public static BlockSizeConstraints Default { get; } = new(1, 4096, 32 * 1024 * 1024);
}

/// <summary>Allocation state of an extent (the <c>base:allocation</c> context's bits).</summary>
[Flags]
public enum ExtentState
{
    /// <summary>Allocated data.</summary>
    Data = 0,
    /// <summary>Unallocated.</summary>
    Hole = 1,
    /// <summary>Reads as zeroes.</summary>
    Zero = 2,
}

/// <summary>One run of equal allocation state.</summary>
/// <param name="Length">Length in bytes (positive).</param>
/// <param name="State">Allocation state.</param>
public readonly record struct BlockExtent(long Length, ExtentState State);
