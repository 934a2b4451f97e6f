using System.Runtime.CompilerServices;
using NbdFast.Devices;
using NbdFast.Protocol;

namespace NbdFast.Transmission;

/// <summary>
/// Runs one validated request against the device through the <see cref="IBlockDevice"/> API and builds its
/// complete reply. Shared by every transport: the stream transport runs all requests here; the io_uring
/// transport runs here what it does not handle natively on its ring.
/// </summary>
internal sealed partial class RequestExecutor(TransmissionContext context)
{
    private readonly TransmissionContext _context = context;

    /// <summary>
    /// Runs the request and returns its reply, success or error, ready to send. The reply points into the
    /// request's own buffers, so it stays valid until the context is reset.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<ReadOnlyMemory<byte>> ExecuteAsync(RequestContext rc)
    {
        try
        {
            return await RunCommandAsync(rc).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            NbdError error = BlockDeviceException.ToNbdError(e);
            rc.Outcome = error;
            int length = ReplyEncoder.WriteError(rc.Scratch, _context, rc.Request, error, e is BlockDeviceException ? e.Message : error.ToString());
            return rc.Scratch.AsMemory(0, length);
        }
    }

    /// <summary>Runs the command; returns the reply to send (which may point into the request's buffer).</summary>
    private async ValueTask<ReadOnlyMemory<byte>> RunCommandAsync(RequestContext rc)
    {
        NbdRequest request = rc.Request;
        IBlockDevice device = _context.Device;
        long offset = (long)request.Offset;
        long length = (long)request.Length;
        WriteFlags fua = (request.Flags & NbdCommandFlags.Fua) != 0 ? WriteFlags.Fua : WriteFlags.None;
        switch (request.Command)
        {
            case NbdCommand.Read:
            {
                if (SparseReadApplies(request) && await TrySparseReadAsync(rc).ConfigureAwait(false) is { } sparse)
                {
                    return sparse;
                }
                byte[] buffer = rc.Buffer!;
                if (length > 0)
                {
                    await device.ReadAsync(offset, buffer.AsMemory(ReplyEncoder.Headroom, (int)length)).ConfigureAwait(false);
                }
                int start = ReplyEncoder.WriteReadHeader(buffer, _context, request, (int)length);
                return buffer.AsMemory(start, ReplyEncoder.Headroom - start + (int)length);
            }
            case NbdCommand.Write:
                if (length > 0)
                {
                    await device.WriteAsync(offset, rc.Buffer.AsMemory(0, (int)length), fua).ConfigureAwait(false);
                }
                else if (fua != 0)
                {
                    await device.FlushAsync().ConfigureAwait(false);
                }
                break;
            case NbdCommand.Flush:
                await device.FlushAsync().ConfigureAwait(false);
                break;
            case NbdCommand.Trim:
                if (length > 0)
                {
                    await device.TrimAsync(offset, length, fua).ConfigureAwait(false);
                }
                break;
            case NbdCommand.WriteZeroes:
                if (length > 0)
                {
                    await device.WriteZeroesAsync(offset, length, fua | ZeroFlags(request.Flags)).ConfigureAwait(false);
                }
                break;
            case NbdCommand.Cache:
                if (length > 0)
                {
                    await device.CacheAsync(offset, length).ConfigureAwait(false);
                }
                break;
            case NbdCommand.BlockStatus:
                return await BlockStatusAsync(rc).ConfigureAwait(false);
        }
        return rc.Scratch.AsMemory(0, ReplyEncoder.WriteSuccess(rc.Scratch, _context, request));
    }

    private static WriteFlags ZeroFlags(NbdCommandFlags flags) =>
        ((flags & NbdCommandFlags.NoHole) != 0 ? WriteFlags.NoHole : WriteFlags.None) |
        ((flags & NbdCommandFlags.FastZero) != 0 ? WriteFlags.FastZero : WriteFlags.None);
}
