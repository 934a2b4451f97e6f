namespace NbdFast.IO.Uring;

/// <summary>What a completion is for.</summary>
internal enum OpKind : byte
{
    Wake = 1,
    Receive = 2,
    ReceivePayload = 3,
    Send = 4,
    DeviceRead = 5,
    DeviceWrite = 6,
    DeviceFsync = 7,
    LinkedSend = 8,
    DeviceFallocate = 9,
    /// <summary>The fsync of a graceful shutdown, once nothing is in flight.</summary>
    FinalFlush = 10,
}

/// <summary>
/// Packs a completion's identity into user_data: op kind (8 bits), connection index (16), request slot (16)
/// and the connection's generation (24). A completion whose generation no longer matches belongs to a
/// connection that was closed and whose index was reused: it is ignored.
/// </summary>
internal static class UserData
{
    public const int GenerationMask = 0xFFFFFF;

    public static ulong Pack(OpKind kind, int connection, int slot, int generation) =>
        (byte)kind | ((ulong)(ushort)connection << 8) | ((ulong)(ushort)slot << 24) | ((ulong)(generation & GenerationMask) << 40);

    public static OpKind Kind(ulong data) => (OpKind)(byte)data;
    public static int Connection(ulong data) => (ushort)(data >> 8);
    public static int Slot(ulong data) => (ushort)(data >> 24);
    public static int Generation(ulong data) => (int)(data >> 40) & GenerationMask;
}
