using System.Numerics;

namespace NbdFast.Devices;

/// <summary>
/// One bit per chunk of a <see cref="MemoryDevice"/>: set once the chunk is written, cleared when it is trimmed
/// whole. Small enough to stay in cache (2 KiB per GiB of 64 KiB chunks), and a write only reads its word unless
/// the chunk is new, so writers on different threads do not fight over its lines.
/// </summary>
internal sealed class WrittenChunks(long chunkCount)
{
    private readonly long[] _bits = new long[(chunkCount + 63) >> 6];

    public static bool CanTrack(long chunkCount) => (chunkCount + 63) >> 6 <= Array.MaxLength;

    public bool IsMarked(long chunk) => (Volatile.Read(ref Word(chunk)) & Bit(chunk)) != 0;

    /// <summary>Marks chunks <paramref name="first"/> to <paramref name="last"/>, both included.</summary>
    public void Mark(long first, long last)
    {
        for (long chunk = first; chunk <= last; chunk++)
        {
            if (!IsMarked(chunk))
            {
                Interlocked.Or(ref Word(chunk), Bit(chunk));
            }
        }
    }

    /// <summary>True when chunks <paramref name="first"/> to <paramref name="last"/>, both included, are all marked.</summary>
    public bool AllMarked(long first, long last)
    {
        for (long chunk = first; chunk <= last; chunk++)
        {
            if (!IsMarked(chunk))
            {
                return false;
            }
        }
        return true;
    }

    public void Unmark(long chunk) => Interlocked.And(ref Word(chunk), ~Bit(chunk));

    private ref long Word(long chunk) => ref _bits[chunk >> 6];

    private static long Bit(long chunk) => 1L << (int)(chunk & 63);

    /// <summary>How many chunks are marked; a snapshot when writers race it.</summary>
    public long Count
    {
        get
        {
            long total = 0;
            foreach (long word in _bits)
            {
                total += BitOperations.PopCount((ulong)word);
            }
            return total;
        }
    }
}
