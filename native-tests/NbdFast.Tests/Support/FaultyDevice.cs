using NbdFast.Devices;

namespace NbdFast.Tests.Support;

/// <summary>The device calls a <see cref="Fault"/> can apply to.</summary>
[Flags]
public enum FaultOps
{
    Read = 1,
    Write = 2,
    Flush = 4,
    Trim = 8,
    WriteZeroes = 16,
    Any = Read | Write | Flush | Trim | WriteZeroes,
}

/// <summary>
/// One injected fault. It matches calls of <see cref="Ops"/> that overlap [<see cref="Offset"/>,
/// <see cref="Offset"/> + <see cref="Length"/>) (FLUSH has no range and always overlaps), optionally only the
/// <see cref="OnCall"/>-th such call. A matching call first waits (<see cref="Delay"/>, then <see cref="Gate"/>),
/// then, for a write with <see cref="TornPrefix"/>, applies only that many leading bytes, and finally fails with
/// <see cref="Errno"/> (as an <see cref="IOException"/> whose HResult is the errno, which is how
/// <see cref="FileDevice"/> reports host errors) or, with no errno, goes ahead normally. Several faults may
/// match one call: all their waits apply, and the first with an errno decides the error.
/// </summary>
public sealed record Fault
{
    public FaultOps Ops { get; init; } = FaultOps.Any;
    public long Offset { get; init; }
    public long Length { get; init; } = long.MaxValue;

    /// <summary>Only the n-th matching call (1-based); null: every matching call.</summary>
    public int? OnCall { get; init; }

    /// <summary>Linux errno to fail with (5 EIO, 28 ENOSPC, ...); null: do not fail.</summary>
    public int? Errno { get; init; }

    /// <summary>For writes: bytes applied before failing (a torn completion); needs <see cref="Errno"/>.</summary>
    public int? TornPrefix { get; init; }

    public TimeSpan Delay { get; init; }

    /// <summary>Matching calls wait here until <see cref="FaultGate.Open"/>.</summary>
    public FaultGate? Gate { get; init; }

    internal int Matches;

    internal bool Overlaps(long offset, long length) =>
        length == 0 ? offset >= Offset && offset - Offset < Length
        : offset < Offset + Math.Min(Length, long.MaxValue - Offset) && Offset < offset + length;
}

/// <summary>Holds matching calls until opened; counts how many have arrived.</summary>
public sealed class FaultGate
{
    private readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _arrived;

    /// <summary>Calls that reached the gate (waiting or let through).</summary>
    public int Arrived => Volatile.Read(ref _arrived);

    public void Open() => _open.TrySetResult();

    /// <summary>Waits until <paramref name="count"/> calls have arrived.</summary>
    public async Task WaitForArrivalsAsync(int count, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(20));
        while (Arrived < count)
        {
            await Task.Delay(10, cts.Token);
        }
    }

    internal Task PassAsync()
    {
        Interlocked.Increment(ref _arrived);
        return _open.Task;
    }
}

/// <summary>
/// Wraps a device and injects faults into chosen calls: errors (EIO, ENOSPC, any errno) at chosen offsets or on
/// the n-th call, delays and gates that hold requests in flight, and torn writes that apply a prefix and then
/// fail. Faults can be added while the device is being served. Counts every call it passes to the inner device.
/// </summary>
public sealed class FaultyDevice(IBlockDevice inner) : IBlockDevice
{
    private readonly Lock _lock = new();
    private volatile Fault[] _faults = [];
    private int _writes;
    private int _injected;

    public IBlockDevice Inner { get; } = inner;

    /// <summary>Writes that reached the inner device (torn ones included).</summary>
    public int WritesApplied => Volatile.Read(ref _writes);

    /// <summary>Calls that failed because of a fault.</summary>
    public int FaultsInjected => Volatile.Read(ref _injected);

    public long Size => Inner.Size;
    public BlockDeviceCapabilities Capabilities => Inner.Capabilities;
    public BlockSizeConstraints BlockSize => Inner.BlockSize;

    public FaultyDevice Add(Fault fault)
    {
        lock (_lock)
        {
            _faults = [.. _faults, fault];
        }
        return this;
    }

    /// <summary>Every <paramref name="ops"/> call overlapping the range fails with <paramref name="errno"/>.</summary>
    public FaultyDevice FailAt(FaultOps ops, long offset, long length, int errno) =>
        Add(new Fault { Ops = ops, Offset = offset, Length = length, Errno = errno });

    /// <summary>The <paramref name="n"/>-th <paramref name="ops"/> call (1-based) fails with <paramref name="errno"/>.</summary>
    public FaultyDevice FailNth(FaultOps ops, int n, int errno) => Add(new Fault { Ops = ops, OnCall = n, Errno = errno });

    /// <summary>Removes every fault (already waiting calls keep theirs).</summary>
    public void Clear()
    {
        lock (_lock)
        {
            _faults = [];
        }
    }

    public async ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        await InjectAsync(FaultOps.Read, offset, destination.Length);
        await Inner.ReadAsync(offset, destination, cancellationToken);
    }

    public async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source, WriteFlags flags, CancellationToken cancellationToken = default)
    {
        Fault? fault = await InjectAsync(FaultOps.Write, offset, source.Length, deferError: true);
        if (fault?.TornPrefix is int prefix)
        {
            Interlocked.Increment(ref _writes);
            await Inner.WriteAsync(offset, source[..Math.Min(prefix, source.Length)], flags, cancellationToken);
        }
        if (fault?.Errno is int errno)
        {
            throw Error(errno);
        }
        Interlocked.Increment(ref _writes);
        await Inner.WriteAsync(offset, source, flags, cancellationToken);
    }

    public async ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        await InjectAsync(FaultOps.Flush, 0, 0);
        await Inner.FlushAsync(cancellationToken);
    }

    public async ValueTask TrimAsync(long offset, long length, WriteFlags flags, CancellationToken cancellationToken = default)
    {
        await InjectAsync(FaultOps.Trim, offset, length);
        await Inner.TrimAsync(offset, length, flags, cancellationToken);
    }

    public async ValueTask WriteZeroesAsync(long offset, long length, WriteFlags flags, CancellationToken cancellationToken = default)
    {
        await InjectAsync(FaultOps.WriteZeroes, offset, length);
        await Inner.WriteZeroesAsync(offset, length, flags, cancellationToken);
    }

    public ValueTask CacheAsync(long offset, long length, CancellationToken cancellationToken = default) =>
        Inner.CacheAsync(offset, length, cancellationToken);

    public ValueTask<int> GetExtentsAsync(long offset, long length, Memory<BlockExtent> extents, CancellationToken cancellationToken = default) =>
        Inner.GetExtentsAsync(offset, length, extents, cancellationToken);

    public ValueTask DisposeAsync() => Inner.DisposeAsync();

    /// <summary>
    /// Applies every fault that fires for this call: their delays and gates in order, then the first one's errno
    /// (thrown here, or returned for the caller to throw after a torn prefix when <paramref name="deferError"/>).
    /// </summary>
    private async ValueTask<Fault?> InjectAsync(FaultOps op, long offset, long length, bool deferError = false)
    {
        Fault? failing = null;
        foreach (Fault fault in _faults)
        {
            if ((fault.Ops & op) == 0 || (op != FaultOps.Flush && !fault.Overlaps(offset, length)))
            {
                continue;
            }
            int call = Interlocked.Increment(ref fault.Matches);
            if (fault.OnCall is int n && call != n)
            {
                continue;
            }
            if (fault.Delay > TimeSpan.Zero)
            {
                await Task.Delay(fault.Delay);
            }
            if (fault.Gate is FaultGate gate)
            {
                await gate.PassAsync();
            }
            failing ??= fault.Errno is null ? null : fault;
        }
        if (failing?.Errno is int errno)
        {
            Interlocked.Increment(ref _injected);
            if (!deferError)
            {
                throw Error(errno);
            }
        }
        return failing;
    }

    private static IOException Error(int errno) => new($"injected fault: errno {errno}", errno);
}
