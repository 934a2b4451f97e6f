using NbdFast.Protocol;

namespace NbdFast.Transmission;

/// <summary>The verdict on one request header.</summary>
internal readonly record struct Verdict(NbdError Error, bool EndSession = false, string? Message = null)
{
    public static Verdict Ok => default;
    public bool IsOk => Error == NbdError.None;
}

/// <summary>
/// Checks a request against what was negotiated, before anything touches the device. Pure: the same
/// checks serve every transport. All range checks are overflow-safe (subtract, never add).
/// </summary>
internal static class RequestValidator
{
    public static Verdict Validate(in NbdRequest request, TransmissionContext context)
    {
        NbdCommandFlags allowed = context.Advertises(NbdTransmissionFlags.SendFua) ? NbdCommandFlags.Fua : NbdCommandFlags.None;
        switch (request.Command)
        {
            case NbdCommand.Read:
                if (context.StructuredReplies) allowed |= NbdCommandFlags.DontFragment;
                return Check(request, allowed) ?? CheckRange(request, context, NbdError.Invalid) ?? CheckPayloadSize(request, context);

            case NbdCommand.Write:
                if (context.ReadOnly) return ReadOnlyRefusal(context);
                if (context.ExtendedHeaders)
                {
                    if ((request.Flags & NbdCommandFlags.PayloadLen) == 0) return new Verdict(NbdError.Invalid, Message: "WRITE needs PAYLOAD_LEN with extended headers");
                    allowed |= NbdCommandFlags.PayloadLen;
                }
                return Check(request, allowed) ?? CheckRange(request, context, NbdError.NoSpace) ?? Verdict.Ok;

            case NbdCommand.Flush:
                if (!context.Advertises(NbdTransmissionFlags.SendFlush)) return Unsupported("FLUSH");
                if (request.Offset != 0 || request.Length != 0) return new Verdict(NbdError.Invalid, Message: "FLUSH offset and length must be zero");
                return Check(request, allowed) ?? Verdict.Ok;

            case NbdCommand.Trim:
                if (context.ReadOnly) return ReadOnlyRefusal(context);
                if (!context.Advertises(NbdTransmissionFlags.SendTrim)) return Unsupported("TRIM");
                return Check(request, allowed) ?? CheckRange(request, context, NbdError.Invalid) ?? Verdict.Ok;

            case NbdCommand.WriteZeroes:
                if (context.ReadOnly) return ReadOnlyRefusal(context);
                if (!context.Advertises(NbdTransmissionFlags.SendWriteZeroes)) return Unsupported("WRITE_ZEROES");
                allowed |= NbdCommandFlags.NoHole;
                if (context.Advertises(NbdTransmissionFlags.SendFastZero)) allowed |= NbdCommandFlags.FastZero;
                return Check(request, allowed) ?? CheckRange(request, context, NbdError.NoSpace) ?? Verdict.Ok;

            case NbdCommand.Cache:
                if (!context.Advertises(NbdTransmissionFlags.SendCache)) return Unsupported("CACHE");
                return Check(request, allowed) ?? CheckRange(request, context, NbdError.Invalid) ?? Verdict.Ok;

            case NbdCommand.BlockStatus:
                if (!context.AllocationContext) return new Verdict(NbdError.Invalid, Message: "no metadata context was negotiated");
                allowed |= NbdCommandFlags.ReqOne;
                if (request.Length == 0) return new Verdict(NbdError.Invalid, Message: "BLOCK_STATUS needs a non-zero length");
                return Check(request, allowed) ?? CheckRange(request, context, NbdError.Invalid) ?? Verdict.Ok;

            default:
                return new Verdict(NbdError.Invalid, Message: "unknown command");
        }
    }

    private static Verdict? Check(in NbdRequest request, NbdCommandFlags allowed) =>
        (request.Flags & ~allowed) == 0 ? null : new Verdict(NbdError.Invalid, Message: "flag not valid for this command");

    private static Verdict? CheckRange(in NbdRequest request, TransmissionContext context, NbdError outOfRange)
    {
        ulong size = (ulong)context.Size;
        return request.Offset <= size && request.Length <= size - request.Offset
            ? null
            : new Verdict(outOfRange, Message: "request beyond the end of the export");
    }

    private static Verdict CheckPayloadSize(in NbdRequest request, TransmissionContext context) =>
        request.Length <= context.MaxPayload ? Verdict.Ok : new Verdict(NbdError.Overflow, Message: "request longer than the maximum payload");

    private static Verdict Unsupported(string command) => new(NbdError.Invalid, Message: command + " was not advertised");

    private static Verdict ReadOnlyRefusal(TransmissionContext context) =>
        new(NbdError.Perm, context.Options.EndSessionOnReadOnlyWrite, "the export is read-only");
}
