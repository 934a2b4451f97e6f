namespace NbdFast.Tests.Support;

/// <summary>Raw disk images for the real-client tests.</summary>
public static class Images
{
    /// <summary>A 64 MiB image: the largest the real-client tests use.</summary>
    public const int Size64MiB = 64 * 1024 * 1024;

    /// <summary>
    /// Writes a raw image of <paramref name="size"/> bytes whose 1 MiB stripes alternate between pseudo-random
    /// data and zeroes (the zero stripes are left sparse), so copies exercise both data and zero handling.
    /// Returns the image's bytes.
    /// </summary>
    public static byte[] CreateStriped(string path, int size, int seed)
    {
        const int Stripe = 1024 * 1024;
        byte[] contents = new byte[size];
        var random = new Random(seed);
        using var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
        stream.SetLength(size);
        for (int offset = 0; offset < size; offset += Stripe)
        {
            int length = Math.Min(Stripe, size - offset);
            if ((offset / Stripe) % 3 == 1)
            {
                continue; // a zero stripe, left as a hole
            }
            // Sprinkle a few zero bytes and a short zero run inside data stripes too.
            Span<byte> data = contents.AsSpan(offset, length);
            random.NextBytes(data);
            data.Slice(random.Next(length - 4096), 4096).Clear();
            stream.Position = offset;
            stream.Write(data);
        }
        return contents;
    }
}
